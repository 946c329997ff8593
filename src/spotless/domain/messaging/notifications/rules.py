"""When notifications are due, in the organisation's own zone. Pure: no database, no clock.

The reminder rule: a visit's reminder is due at **the same local time the day before**, in the
organisation's IANA zone. Across a DST change that is not 24 real hours: a visit at 09:00 on the
day after the spring change is reminded at 09:00 the day before (24 h), one at 09:00 ON the change
day is reminded at 09:00 the day before, which is 23 real hours earlier (25 in the autumn).
A wall time that does not exist on the reminder day (the hour the spring change skips) is read with
the offset before the change, i.e. an hour later by the clock (02:30 -> 03:30); a wall time that
happens twice (the autumn change) is the first of the two.

Digest periods: each digest is sent once per period, keyed in the organisation's zone: `daily`
-> `2026-03-08`, `weekly` -> the ISO week `2026-W10`, `monthly` -> `2026-03`. A digest sent in a
period reports what was done in the period before and what is planned in this one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Schedule = Literal["daily", "weekly", "monthly"]
SCHEDULES: tuple[Schedule, ...] = ("daily", "weekly", "monthly")

# How far ahead the reminder scan looks: a day plus the hour a DST change adds, plus slack.
REMINDER_HORIZON = timedelta(hours=26)


def reminder_at(starts_at: datetime, zone: ZoneInfo) -> datetime:
    """When the reminder of a visit starting at `starts_at` is due (UTC)."""
    local = starts_at.astimezone(zone)
    wall = local.replace(tzinfo=None) - timedelta(days=1)
    # fold=0: a skipped wall time takes the pre-change offset, a repeated one its first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def reminder_due(starts_at: datetime, zone: ZoneInfo, now: datetime) -> bool:
    """Due from its reminder time until the visit starts (a visit booked inside the window is
    reminded at the next scan)."""
    return reminder_at(starts_at, zone) <= now < starts_at


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day in UTC (23 or 25 hours long on a DST change day)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def agenda_date(now: datetime, zone: ZoneInfo, send_at: time) -> date | None:
    """The date whose agenda cleaners should have by `now`: tomorrow's, once the organisation's
    chosen local time has passed today; None before it."""
    local = now.astimezone(zone)
    if local.time().replace(tzinfo=None) < send_at:
        return None
    return local.date() + timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """One digest period: its key, the dates it reports as done [done_from, done_to) and those it
    reports as planned [planned_from, planned_to) (local dates)."""

    key: str
    done_from: date
    done_to: date
    planned_from: date
    planned_to: date


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    first = _month_start(day)
    return (first + timedelta(days=32)).replace(day=1)


def period_of(schedule: Schedule, today: date) -> Period:
    """The period `today` (a local date) belongs to."""
    if schedule == "daily":
        return Period(today.isoformat(), today - timedelta(days=1), today, today, today + timedelta(days=1))
    if schedule == "weekly":
        year, week, _ = today.isocalendar()
        monday = today - timedelta(days=today.weekday())
        return Period(f"{year}-W{week:02d}", monday - timedelta(days=7), monday, monday, monday + timedelta(days=7))
    if schedule == "monthly":
        first = _month_start(today)
        previous = _month_start(first - timedelta(days=1))
        return Period(f"{first.year}-{first.month:02d}", previous, first, first, _next_month(first))
    raise ValueError(f"unknown digest schedule {schedule!r}")


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


__all__ = [
    "REMINDER_HORIZON",
    "SCHEDULES",
    "Period",
    "Schedule",
    "agenda_date",
    "local_day_bounds",
    "local_today",
    "period_of",
    "reminder_at",
    "reminder_due",
]
