"""Working windows and open slots. Pure: the caller fetches hours, time off and busy ranges for the
whole request in a couple of queries and this module does the per-day, per-worker work in memory.

Busy ranges are the assignment ranges the exclusion constraint compares: [start, end + buffer).
A candidate slot is free when its own range [s, s + duration + buffer) overlaps none of them, the
exact rule the database enforces, so a slot offered here is a booking the database will accept.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from spotless.domain.scheduling import timeutil

Interval = tuple[datetime, datetime]
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class WeeklyHours:
    weekday: int  # 0 = Monday
    start: time
    end: time


@dataclass
class WorkerCalendar:
    hours: list[WeeklyHours] = field(default_factory=list)
    time_off: list[Interval] = field(default_factory=list)
    busy: list[Interval] = field(default_factory=list)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def windows_on(d: date, hours: Sequence[WeeklyHours], tz: ZoneInfo) -> list[Interval]:
    """The worker's working intervals on local day `d`, as instants, touching ones merged."""
    return _merge(
        (timeutil.to_utc(d, h.start, tz), timeutil.to_utc(d, h.end, tz)) for h in hours if h.weekday == d.weekday()
    )


def fits_working_hours(start: datetime, end: datetime, hours: Sequence[WeeklyHours], tz: ZoneInfo) -> bool:
    """Whether [start, end) lies inside one (merged) working interval of its local day."""
    day = timeutil.local_date(start, tz)
    # A window never crosses local midnight (end > start in the template), so one day suffices.
    return any(w_start <= start and end <= w_end for w_start, w_end in windows_on(day, hours, tz))


def overlapping(start: datetime, end: datetime, intervals: Iterable[Interval]) -> list[Interval]:
    return [(s, e) for s, e in intervals if s < end and start < e]


class _Busy:
    """Sorted busy intervals with an O(log n) overlap test."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        self.intervals = _merge(intervals)
        self.starts = [s for s, _ in self.intervals]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self.starts, end)  # intervals starting before `end`
        return i > 0 and self.intervals[i - 1][1] > start


def candidate_starts(window: Interval, d: date, tz: ZoneInfo, step: timedelta) -> list[datetime]:
    """Slot starts inside `window` on local day `d`, aligned on the local wall clock from the
    window's local start. Wall-clock times skipped by spring-forward are not offered; the repeated
    hour of a fall-back offers both instants (their offsets tell them apart)."""
    w_start, w_end = window
    out: list[datetime] = []
    if w_start.astimezone(tz).utcoffset() == (w_end - _TICK).astimezone(tz).utcoffset():
        # No clock change inside the window (every day but two a year): stepping the instant is
        # stepping the wall clock.
        current = w_start
        while current < w_end:
            out.append(current)
            current += step
        return out
    wall = datetime.combine(d, timeutil.local(w_start, tz).time())
    while wall.date() == d:
        found = timeutil.instants(d, wall.time(), tz)
        # Existing wall times map to increasing instants: once one is past the window, all are.
        if found and found[0] >= w_end:
            break
        out.extend(instant for instant in found if w_start <= instant < w_end)
        wall += step
    return sorted(set(out))


def free_slots(
    calendar: WorkerCalendar,
    days: Sequence[date],
    tz: ZoneInfo,
    duration: timedelta,
    buffer: timedelta,
    step: timedelta,
    not_before: datetime | None = None,
) -> list[datetime]:
    """Start instants at which a booking of `duration` fits this worker's hours and time off and
    conflicts with none of their busy ranges (buffer included on both sides, as the DB checks)."""
    busy = _Busy(calendar.busy)
    off = _Busy(calendar.time_off)
    out: list[datetime] = []
    for d in days:
        for window in windows_on(d, calendar.hours, tz):
            for start in candidate_starts(window, d, tz, step):
                end = start + duration
                if end > window[1] or (not_before is not None and start < not_before):
                    continue
                if off.overlaps(start, end) or busy.overlaps(start, end + buffer):
                    continue
                out.append(start)
    return out


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    worker_ids: tuple[UUID, ...]


def collect(per_worker: dict[UUID, list[datetime]], duration: timedelta) -> list[Slot]:
    """One slot per start instant, listing every worker free then (stable order)."""
    by_start: dict[datetime, list[UUID]] = {}
    for worker_id in sorted(per_worker, key=str):
        for start in per_worker[worker_id]:
            by_start.setdefault(start, []).append(worker_id)
    return [Slot(start, start + duration, tuple(ids)) for start, ids in sorted(by_start.items())]
