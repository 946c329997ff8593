"""Slot computation in local time: DST days, buffers, time off."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.slots import WeeklyHours, WorkerCalendar, collect, fits_working_hours, free_slots

TORONTO = timeutil.zone("America/Toronto")
SPRING = date(2027, 3, 14)  # Sunday
FALL = date(2027, 11, 7)  # Sunday
HOUR = timedelta(hours=1)
STEP = timedelta(minutes=30)


def every_day(start: time, end: time) -> list[WeeklyHours]:
    return [WeeklyHours(w, start, end) for w in range(7)]


def local_readings(instants: list[datetime]) -> list[str]:
    return [timeutil.local(i, TORONTO).strftime("%H:%M%z") for i in instants]


def test_eight_oclock_is_offered_before_on_and_after_each_change() -> None:
    cal = WorkerCalendar(hours=every_day(time(8), time(17)))
    for day in (SPRING, FALL):
        days = [day - timedelta(days=1), day, day + timedelta(days=1)]
        slots = free_slots(cal, days, TORONTO, duration=2 * HOUR, buffer=timedelta(0), step=STEP)
        firsts = [s for s in slots if timeutil.local(s, TORONTO).time() == time(8)]
        assert [timeutil.local(s, TORONTO).date() for s in firsts] == days
        # The last slot ends at 17:00 local on every day: 15:00 starts, nothing later.
        per_day = {d: [s for s in slots if timeutil.local_date(s, TORONTO) == d] for d in days}
        assert all(timeutil.local(v[-1], TORONTO).time() == time(15) for v in per_day.values())
        assert all(len(v) == 15 for v in per_day.values())


def test_no_slot_at_a_wall_clock_time_that_does_not_exist() -> None:
    cal = WorkerCalendar(hours=every_day(time(0), time(6)))
    slots = free_slots(cal, [SPRING], TORONTO, duration=HOUR, buffer=timedelta(0), step=STEP)
    readings = local_readings(slots)
    assert "02:00-0500" not in readings and not any(r.startswith("02:") for r in readings)
    assert readings[:4] == ["00:00-0500", "00:30-0500", "01:00-0500", "01:30-0500"]
    assert readings[4] == "03:00-0400"
    # The window 00:00-06:00 lasts 5 real hours that day: last 1 h slot starts at 05:00.
    assert readings[-1] == "05:00-0400"


def test_repeated_hour_offers_both_instants_with_their_offsets() -> None:
    cal = WorkerCalendar(hours=every_day(time(0), time(4)))
    slots = free_slots(cal, [FALL], TORONTO, duration=HOUR, buffer=timedelta(0), step=STEP)
    readings = local_readings(slots)
    # In real-time order: the summer-time 01:00 and 01:30, then the same readings on standard time.
    assert readings[:6] == ["00:00-0400", "00:30-0400", "01:00-0400", "01:30-0400", "01:00-0500", "01:30-0500"]
    assert slots == sorted(set(slots))
    # A 5-hour window: 1 h slots every 30 minutes of real time = 9 starts.
    assert len(slots) == 9


def test_busy_ranges_include_the_buffer_on_both_sides() -> None:
    day = date(2027, 6, 7)
    booked_start = timeutil.to_utc(day, time(11), TORONTO)
    buffer = timedelta(minutes=30)
    # The existing booking 11:00-12:00 holds the worker until 12:30 (its buffer).
    cal = WorkerCalendar(hours=every_day(time(8), time(17)), busy=[(booked_start, booked_start + HOUR + buffer)])
    slots = local_readings(free_slots(cal, [day], TORONTO, duration=HOUR, buffer=buffer, step=STEP))
    # A new 1 h job needs its own buffer before the 11:00 job: it must end by 10:30 => start <= 09:30.
    assert "09:30-0400" in slots and "10:00-0400" not in slots
    assert "12:00-0400" not in slots and "12:30-0400" in slots


def test_time_off_and_not_before_remove_slots() -> None:
    day = date(2027, 6, 8)
    off = (timeutil.to_utc(day, time(12), TORONTO), timeutil.to_utc(day, time(14), TORONTO))
    cal = WorkerCalendar(hours=every_day(time(8), time(17)), time_off=[off])
    slots = local_readings(
        free_slots(cal, [day], TORONTO, HOUR, timedelta(0), STEP, not_before=timeutil.to_utc(day, time(9), TORONTO))
    )
    assert slots[0] == "09:00-0400"
    assert "11:00-0400" in slots and "11:30-0400" not in slots and "13:30-0400" not in slots
    assert "14:00-0400" in slots


def test_touching_windows_merge_and_fit_check() -> None:
    hours = [WeeklyHours(0, time(8), time(12)), WeeklyHours(0, time(12), time(17))]
    monday = date(2027, 6, 7)
    start = timeutil.to_utc(monday, time(11), TORONTO)
    assert fits_working_hours(start, start + 2 * HOUR, hours, TORONTO)
    assert not fits_working_hours(start, start + 7 * HOUR, hours, TORONTO)
    tuesday = start + timedelta(days=1)
    assert not fits_working_hours(tuesday, tuesday + HOUR, hours, TORONTO)


def test_collect_groups_workers_by_start() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    t = datetime(2027, 6, 7, 12, tzinfo=UTC)
    slots = collect({a: [t, t + HOUR], b: [t]}, HOUR)
    assert [s.starts_at for s in slots] == [t, t + HOUR]
    assert set(slots[0].worker_ids) == {a, b} and slots[1].worker_ids == (a,)
