"""Recurrence rules on local calendar dates. Pure: a rule yields dates; `timeutil` makes them instants.

Rules are expanded on dates, never on instants, so "09:00 every week" stays 09:00 local on both
sides of a DST change: each occurrence is (date, local start time) converted on its own day.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Frequency = Literal["weekly", "monthly"]
MAX_INTERVAL = 52
# A count-bounded rule is converted to an end date at creation; this caps the walk.
MAX_COUNT = 1000


@dataclass(frozen=True)
class Rule:
    """`weekly`: every `interval` weeks on the anchor's weekday. `monthly`: every `interval` months
    on `day_of_month` (the anchor's day by default), clamped to the month's last day (a "31st"
    rule cleans on 30 April and 28/29 February rather than skipping those months)."""

    frequency: Frequency
    anchor: date
    interval: int = 1
    day_of_month: int | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.frequency not in ("weekly", "monthly"):
            raise ValueError("frequency must be weekly or monthly")
        if not 1 <= self.interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be between 1 and {MAX_INTERVAL}")
        if self.day_of_month is not None and not 1 <= self.day_of_month <= 31:
            raise ValueError("day_of_month must be between 1 and 31")
        if self.until is not None and self.until < self.anchor:
            raise ValueError("until must not be before the anchor date")

    @property
    def month_day(self) -> int:
        return self.day_of_month or self.anchor.day

    def first(self) -> date:
        """The first occurrence on or after the anchor."""
        if self.frequency == "weekly":
            return self.anchor
        in_anchor_month = _month_date(self.anchor.year, self.anchor.month, self.month_day)
        if in_anchor_month >= self.anchor:
            return in_anchor_month
        return _add_months(self.anchor.year, self.anchor.month, self.interval, self.month_day)

    def iter_dates(self) -> Iterator[date]:
        """Every occurrence from the first, in order (bounded by `until` when set)."""
        if self.frequency == "weekly":
            step = timedelta(weeks=self.interval)
            current = self.anchor
            while self.until is None or current <= self.until:
                yield current
                current += step
            return
        first = self.first()
        k = 0
        while True:
            months = k * self.interval
            year, month = divmod(first.month - 1 + months, 12)
            current = _month_date(first.year + year, month + 1, self.month_day)
            if self.until is not None and current > self.until:
                return
            yield current
            k += 1

    def between(self, start: date, end: date) -> list[date]:
        """Occurrences in [start, end], computed without walking from the anchor for weekly rules."""
        if end < start:
            return []
        if self.until is not None:
            end = min(end, self.until)
        if self.frequency == "weekly":
            step_days = 7 * self.interval
            begin = max(start, self.anchor)
            offset = (begin - self.anchor).days
            first_k = -(-offset // step_days)
            current = self.anchor + timedelta(days=first_k * step_days)
            out: list[date] = []
            while current <= end:
                out.append(current)
                current += timedelta(days=step_days)
            return out
        out = []
        for current in self.iter_dates():
            if current > end:
                break
            if current >= start:
                out.append(current)
        return out

    def nth(self, count: int) -> date:
        """The date of the `count`-th occurrence (1-based): turns "10 times" into an end date."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}")
        for index, current in enumerate(self.iter_dates(), start=1):
            if index == count:
                return current
        raise ValueError("the rule ends before that many occurrences")

    def occurs_on(self, d: date) -> bool:
        return d in self.between(d, d)

    def last_before(self, d: date) -> date | None:
        """The latest occurrence strictly before `d` (the end of a series split at `d`)."""
        found = self.between(self.anchor, d - timedelta(days=1))
        return found[-1] if found else None


def _month_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, months: int, day: int) -> date:
    y, m = divmod(month - 1 + months, 12)
    return _month_date(year + y, m + 1, day)
