from __future__ import annotations

from datetime import UTC, date, datetime, time

from spotless.domain.scheduling import timeutil

TORONTO = timeutil.zone("America/Toronto")
SPRING = date(2027, 3, 14)  # 02:00 -> 03:00
FALL = date(2027, 11, 7)  # 02:00 -> 01:00


def test_gap_and_repeated_hour_are_recognised() -> None:
    assert not timeutil.exists(SPRING, time(2, 30), TORONTO)
    assert timeutil.instants(SPRING, time(2, 30), TORONTO) == []
    assert timeutil.exists(SPRING, time(3, 0), TORONTO)
    assert timeutil.is_ambiguous(FALL, time(1, 30), TORONTO)
    first, second = timeutil.instants(FALL, time(1, 30), TORONTO)
    assert (second - first).total_seconds() == 3600
    assert first == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


def test_a_time_in_the_gap_resolves_forward_not_dropped() -> None:
    assert timeutil.local(timeutil.to_utc(SPRING, time(2, 30), TORONTO), TORONTO).time() == time(3, 30)


def test_local_days_are_23_and_25_hours_long_on_change_days() -> None:
    start, end = timeutil.days_range_utc(SPRING, SPRING, TORONTO)
    assert (end - start).total_seconds() == 23 * 3600
    start, end = timeutil.days_range_utc(FALL, FALL, TORONTO)
    assert (end - start).total_seconds() == 25 * 3600
    assert start == datetime(2027, 11, 7, 4, 0, tzinfo=UTC)


def test_zone_validation() -> None:
    assert timeutil.is_valid_zone("America/Toronto")
    assert not timeutil.is_valid_zone("Mars/Olympus")
    assert not timeutil.is_valid_zone("../etc/passwd")
