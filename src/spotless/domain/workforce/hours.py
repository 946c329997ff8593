"""Weekly working hours and the schedule shape availability reads. Pure: no I/O.

Hours are wall-clock times in the organisation's timezone (a 09:00 start stays 09:00 across DST);
time off is absolute (UTC instants)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time
from itertools import pairwise
from uuid import UUID

import msgspec

from spotless.lib.errors import Problem

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::(00))?$")


class HoursInterval(msgspec.Struct, frozen=True, kw_only=True, order=True):
    weekday: int  # 0 = Monday .. 6 = Sunday, like date.weekday()
    start: time
    end: time


class TimeOffInterval(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: str | None = None
    # Busy time from the worker's own calendar (workforce.models.ExternalBusy), not time off entered here.
    external: bool = False


class WorkerSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """What availability needs about one worker: the weekly template (local time) and the time off
    overlapping the requested range."""

    worker_id: UUID
    hours: tuple[HoursInterval, ...]
    time_off: tuple[TimeOffInterval, ...]

    def hours_on(self, weekday: int) -> list[HoursInterval]:
        return [interval for interval in self.hours if interval.weekday == weekday]


def parse_clock(value: str, field: str) -> time:
    match = _TIME.match(value)
    if match is None:
        raise _field_problem(field, "must be a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def format_clock(value: time) -> str:
    return value.strftime("%H:%M")


def validate_weekly_hours(items: Sequence[tuple[int, str, str]]) -> list[HoursInterval]:
    """(weekday, "HH:MM", "HH:MM") items → sorted intervals. Every problem is reported with the
    index of the offending item so the app can highlight it."""
    errors: list[dict[str, str]] = []
    intervals: list[tuple[int, HoursInterval]] = []
    for index, (weekday, start_raw, end_raw) in enumerate(items):
        prefix = f"hours[{index}]"
        if not 0 <= weekday <= 6:
            errors.append({"field": f"{prefix}.weekday", "message": "must be 0 (Monday) to 6 (Sunday)"})
            continue
        try:
            start = parse_clock(start_raw, f"{prefix}.start")
            end = parse_clock(end_raw, f"{prefix}.end")
        except Problem as exc:
            errors.extend(exc.extra["errors"])  # type: ignore[index,call-overload]
            continue
        if end <= start:
            errors.append(
                {"field": f"{prefix}.end", "message": "must be after start (overnight shifts: split at midnight)"}
            )
            continue
        intervals.append((index, HoursInterval(weekday=weekday, start=start, end=end)))
    intervals.sort(key=lambda pair: (pair[1].weekday, pair[1].start))
    for (_, previous), (index, current) in pairwise(intervals):
        if previous.weekday == current.weekday and current.start < previous.end:
            errors.append(
                {
                    "field": f"hours[{index}]",
                    "message": f"overlaps another interval on {WEEKDAYS[current.weekday]}",
                }
            )
    if errors:
        raise Problem(400, "validation-error", "The request is not valid", errors[0]["message"], errors=errors)
    return [interval for _, interval in intervals]


def _field_problem(field: str, message: str) -> Problem:
    return Problem(
        400,
        "validation-error",
        "The request is not valid",
        f"{field} {message}",
        errors=[{"field": field, "message": message}],
    )
