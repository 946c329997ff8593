"""Weekly hours validation: what a manager sees when the week they typed does not make sense."""

from __future__ import annotations

from datetime import time

import pytest

from spotless.domain.workforce.hours import HoursInterval, format_clock, validate_weekly_hours
from spotless.lib.errors import Problem


def _fields(exc: Problem) -> list[str]:
    return [e["field"] for e in exc.extra["errors"]]  # type: ignore[index]


def test_valid_week_is_sorted_by_day_and_start() -> None:
    result = validate_weekly_hours([(2, "13:00", "17:00"), (0, "09:00", "12:00"), (2, "08:00", "12:30")])
    assert result == [
        HoursInterval(weekday=0, start=time(9), end=time(12)),
        HoursInterval(weekday=2, start=time(8), end=time(12, 30)),
        HoursInterval(weekday=2, start=time(13), end=time(17)),
    ]
    assert format_clock(result[1].end) == "12:30"


def test_touching_intervals_are_fine() -> None:
    assert len(validate_weekly_hours([(1, "08:00", "12:00"), (1, "12:00", "16:00")])) == 2


def test_empty_week_clears_hours() -> None:
    assert validate_weekly_hours([]) == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ((7, "09:00", "10:00"), "hours[0].weekday"),
        ((-1, "09:00", "10:00"), "hours[0].weekday"),
        ((0, "9am", "10:00"), "hours[0].start"),
        ((0, "09:00", "24:00"), "hours[0].end"),
        ((0, "09:61", "10:00"), "hours[0].start"),
        ((0, "10:00", "10:00"), "hours[0].end"),
        ((0, "17:00", "09:00"), "hours[0].end"),
    ],
)
def test_bad_interval_names_the_field(item: tuple[int, str, str], field: str) -> None:
    with pytest.raises(Problem) as info:
        validate_weekly_hours([item])
    assert info.value.status_code == 400
    assert _fields(info.value) == [field]


def test_overlap_on_the_same_day_is_refused_and_other_days_are_not() -> None:
    validate_weekly_hours([(0, "09:00", "17:00"), (1, "10:00", "12:00")])
    with pytest.raises(Problem) as info:
        validate_weekly_hours([(0, "09:00", "17:00"), (1, "10:00", "12:00"), (0, "16:00", "18:00")])
    assert _fields(info.value) == ["hours[2]"]
    assert "monday" in info.value.extra["errors"][0]["message"]  # type: ignore[index]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(Problem) as info:
        validate_weekly_hours([(9, "09:00", "10:00"), (0, "x", "10:00"), (0, "11:00", "10:00")])
    assert _fields(info.value) == ["hours[0].weekday", "hours[1].start", "hours[2].end"]
