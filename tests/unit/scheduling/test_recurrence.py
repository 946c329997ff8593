"""Recurrence on local dates: a 09:00 weekly clean stays at 09:00 local across DST."""

from __future__ import annotations

from datetime import date, time

import pytest

from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.recurrence import Rule

TORONTO = timeutil.zone("America/Toronto")


def test_weekly_nine_oclock_stays_nine_local_across_both_dst_changes() -> None:
    # 2027: spring forward on 14 March, fall back on 7 November (America/Toronto).
    rule = Rule("weekly", anchor=date(2027, 3, 1))
    dates = rule.between(date(2027, 3, 1), date(2027, 3, 31))
    assert dates == [date(2027, 3, 1), date(2027, 3, 8), date(2027, 3, 15), date(2027, 3, 22), date(2027, 3, 29)]
    starts = [timeutil.local(timeutil.to_utc(d, time(9), TORONTO), TORONTO) for d in dates]
    assert {s.time() for s in starts} == {time(9)}
    # The UTC instant moves by an hour when the clocks do; the local reading does not.
    assert [s.utcoffset().total_seconds() / 3600 for s in starts] == [-5, -5, -4, -4, -4]  # type: ignore[union-attr]

    autumn = Rule("weekly", anchor=date(2027, 10, 25)).between(date(2027, 10, 25), date(2027, 11, 15))
    readings = [timeutil.local(timeutil.to_utc(d, time(9), TORONTO), TORONTO) for d in autumn]
    assert [r.hour for r in readings] == [9, 9, 9, 9]
    assert [r.utcoffset().total_seconds() / 3600 for r in readings] == [-4, -4, -5, -5]  # type: ignore[union-attr]


def test_every_two_weeks_and_window_queries_agree_with_full_walk() -> None:
    rule = Rule("weekly", anchor=date(2027, 1, 6), interval=2, until=date(2027, 6, 30))
    walked = list(rule.iter_dates())
    assert walked[0] == date(2027, 1, 6) and walked[1] == date(2027, 1, 20)
    assert walked[-1] <= date(2027, 6, 30)
    assert rule.between(date(2027, 2, 1), date(2027, 3, 1)) == [
        d for d in walked if date(2027, 2, 1) <= d <= date(2027, 3, 1)
    ]
    assert rule.between(date(2026, 1, 1), date(2027, 1, 6)) == [date(2027, 1, 6)]
    assert rule.between(date(2027, 7, 1), date(2027, 12, 1)) == []


def test_monthly_clamps_to_short_months_and_counts_convert_to_an_end_date() -> None:
    rule = Rule("monthly", anchor=date(2027, 1, 31))
    assert rule.between(date(2027, 1, 1), date(2027, 5, 31)) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]
    # Anchored after this month's day: the first occurrence is next month.
    late = Rule("monthly", anchor=date(2027, 1, 20), day_of_month=5)
    assert late.first() == date(2027, 2, 5)
    assert Rule("weekly", anchor=date(2027, 1, 4)).nth(3) == date(2027, 1, 18)
    assert Rule("monthly", anchor=date(2027, 1, 15), interval=3).nth(2) == date(2027, 4, 15)


def test_last_before_finds_the_previous_occurrence_for_a_split() -> None:
    rule = Rule("weekly", anchor=date(2027, 1, 4))
    assert rule.last_before(date(2027, 1, 18)) == date(2027, 1, 11)
    assert rule.last_before(date(2027, 1, 4)) is None
    assert rule.occurs_on(date(2027, 1, 25)) and not rule.occurs_on(date(2027, 1, 26))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frequency": "daily"},
        {"frequency": "weekly", "interval": 0},
        {"frequency": "monthly", "day_of_month": 32},
        {"frequency": "weekly", "until": date(2026, 1, 1)},
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Rule(anchor=date(2027, 1, 4), **kwargs)  # type: ignore[arg-type]
