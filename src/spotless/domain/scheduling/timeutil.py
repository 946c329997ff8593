"""Wall-clock time in the organisation's zone <-> instants (UTC). Pure: no I/O.

Everything the business talks about ("09:00 every Tuesday", "bookings on the 14th") is local
wall-clock time; everything stored is an instant. DST makes the mapping partial (a spring-forward
gap has no instant) and non-injective (a fall-back hour has two), so the rules live here, once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def exists(d: date, t: time, tz: ZoneInfo) -> bool:
    """False for wall-clock times skipped by a spring-forward gap."""
    local = datetime.combine(d, t, tzinfo=tz)
    back = local.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def is_ambiguous(d: date, t: time, tz: ZoneInfo) -> bool:
    """True for wall-clock times that happen twice (the repeated hour of a fall-back)."""
    first = datetime.combine(d, t, tzinfo=tz).replace(fold=0)
    second = first.replace(fold=1)
    return first.utcoffset() != second.utcoffset()


def to_utc(d: date, t: time, tz: ZoneInfo) -> datetime:
    """The instant of a local wall-clock time.

    Ambiguous times resolve to the first occurrence (fold=0, still on summer time). Times inside a
    spring-forward gap resolve as if the clock had not moved yet, which lands the same distance
    past the gap (02:30 on a 02:00->03:00 day is 03:30): a 09:00-anchored rule is unaffected, and a
    rule anchored inside the gap still happens that day, shifted forward rather than dropped.
    """
    return datetime.combine(d, t, tzinfo=tz).replace(fold=0).astimezone(UTC)


def instants(d: date, t: time, tz: ZoneInfo) -> list[datetime]:
    """Every instant whose local wall-clock reading is (d, t): none, one, or two."""
    if not exists(d, t, tz):
        return []
    first = to_utc(d, t, tz)
    if is_ambiguous(d, t, tz):
        second = datetime.combine(d, t, tzinfo=tz).replace(fold=1).astimezone(UTC)
        return [first, second]
    return [first]


def day_start_utc(d: date, tz: ZoneInfo) -> datetime:
    """The first instant of local day `d` (midnight, or the first instant after a midnight gap)."""
    return to_utc(d, time(0), tz)


def days_range_utc(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of date_from, start of the day after date_to) as instants: local days, inclusive."""
    return day_start_utc(date_from, tz), day_start_utc(date_to + timedelta(days=1), tz)


def local(instant: datetime, tz: ZoneInfo) -> datetime:
    """An aware instant shown in the organisation's zone (ISO output then carries the offset)."""
    return instant.astimezone(tz)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def each_day(date_from: date, date_to: date) -> list[date]:
    return [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
