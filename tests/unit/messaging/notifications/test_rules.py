"""The reminder rule across both DST changes of 2026 in Toronto, agenda times and digest period keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from spotless.domain.messaging.notifications.rules import (
    agenda_date,
    local_day_bounds,
    period_of,
    reminder_at,
    reminder_due,
)

TORONTO = ZoneInfo("America/Toronto")


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TORONTO)


@pytest.mark.parametrize(
    ("visit", "reminder_utc", "real_hours"),
    [
        # the reminder falls ON the spring change day (after 02:00 -> 03:00): both EDT, 24 h
        (local(2026, 3, 9, 9), datetime(2026, 3, 8, 13, 0, tzinfo=UTC), 24),
        # the visit is on the change day, its reminder the day before in EST: 23 real hours
        (local(2026, 3, 8, 9), datetime(2026, 3, 7, 14, 0, tzinfo=UTC), 23),
        # the autumn change: reminder on 1 Nov at 09:00 EST
        (local(2026, 11, 2, 9), datetime(2026, 11, 1, 14, 0, tzinfo=UTC), 24),
        # visit on 1 Nov at 09:00 EST, reminder 31 Oct at 09:00 EDT: 25 real hours
        (local(2026, 11, 1, 9), datetime(2026, 10, 31, 13, 0, tzinfo=UTC), 25),
    ],
)
def test_the_reminder_is_the_same_local_time_the_day_before(
    visit: datetime, reminder_utc: datetime, real_hours: int
) -> None:
    at = reminder_at(visit, TORONTO)
    assert at == reminder_utc
    assert at.astimezone(TORONTO).time() == visit.time()
    assert visit - at == timedelta(hours=real_hours)


def test_a_skipped_wall_time_is_read_an_hour_later_and_a_repeated_one_is_the_first() -> None:
    # 02:30 on 8 March does not exist in Toronto: the reminder goes at 03:30 EDT (07:30 UTC)
    assert reminder_at(local(2026, 3, 9, 2, 30), TORONTO) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # 01:30 on 1 November happens twice: the first (EDT, 05:30 UTC)
    assert reminder_at(local(2026, 11, 2, 1, 30), TORONTO) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_a_reminder_is_due_from_its_time_until_the_visit_starts() -> None:
    visit = local(2026, 3, 9, 9)
    at = reminder_at(visit, TORONTO)
    assert not reminder_due(visit, TORONTO, at - timedelta(seconds=1))
    assert reminder_due(visit, TORONTO, at)
    assert reminder_due(visit, TORONTO, visit - timedelta(minutes=1))
    assert not reminder_due(visit, TORONTO, visit)


def test_local_days_are_23_and_25_hours_on_the_change_days() -> None:
    start, end = local_day_bounds(date(2026, 3, 8), TORONTO)
    assert end - start == timedelta(hours=23)
    start, end = local_day_bounds(date(2026, 11, 1), TORONTO)
    assert end - start == timedelta(hours=25)


def test_the_agenda_is_tomorrows_once_the_chosen_local_time_has_passed() -> None:
    send_at = time(18, 0)
    assert agenda_date(local(2026, 3, 8, 17, 59).astimezone(UTC), TORONTO, send_at) is None
    assert agenda_date(local(2026, 3, 8, 18, 0).astimezone(UTC), TORONTO, send_at) == date(2026, 3, 9)
    # 23:30 local is already the next day in UTC: the local date decides
    assert agenda_date(local(2026, 11, 1, 23, 30).astimezone(UTC), TORONTO, send_at) == date(2026, 11, 2)


def test_digest_period_keys() -> None:
    daily = period_of("daily", date(2026, 3, 8))
    assert (daily.key, daily.done_from, daily.done_to) == ("2026-03-08", date(2026, 3, 7), date(2026, 3, 8))
    weekly = period_of("weekly", date(2026, 3, 8))  # a Sunday: ISO week 10 began Monday 2 March
    assert weekly.key == "2026-W10"
    assert (weekly.done_from, weekly.done_to, weekly.planned_to) == (
        date(2026, 2, 23),
        date(2026, 3, 2),
        date(2026, 3, 9),
    )
    assert period_of("weekly", date(2027, 1, 1)).key == "2026-W53"
    monthly = period_of("monthly", date(2026, 3, 31))
    assert monthly.key == "2026-03"
    assert (monthly.done_from, monthly.done_to, monthly.planned_to) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
        date(2026, 4, 1),
    )
    assert period_of("monthly", date(2026, 12, 5)).planned_to == date(2027, 1, 1)
    with pytest.raises(ValueError, match="unknown"):
        period_of("yearly", date(2026, 1, 1))  # type: ignore[arg-type]
