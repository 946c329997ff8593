"""The one place request dates and instants are bounded (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import pytest

from spotless.lib.bounds import Day, Instant, parse_day, parse_instant


class Body(msgspec.Struct):
    day: Day
    at: Instant | None = None


def _decode(raw: bytes) -> Body:
    return msgspec.json.decode(raw, type=Body, dec_hook=lambda t, v: (parse_day if t is Day else parse_instant)(v))


def test_values_are_plain_dates_and_datetimes():
    body = _decode(b'{"day": "2030-05-01", "at": "2030-05-01T09:00:00-04:00"}')
    assert type(body.day) is date and body.day == date(2030, 5, 1)
    assert type(body.at) is datetime and body.at.utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize("raw", ["9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01", "2030-02-30", "tomorrow", ""])
def test_days_outside_the_bounds_or_malformed_are_refused(raw):
    with pytest.raises(ValueError):
        parse_day(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00+01:00",  # converting this one to UTC would overflow
        "2101-01-01T00:00:00Z",
        "2030-01-01T00:00:00",  # no offset
        "2030-01-01",
        "soon",
    ],
)
def test_instants_outside_the_bounds_naive_or_malformed_are_refused(raw):
    with pytest.raises(ValueError):
        parse_instant(raw)


def test_the_edges_are_inside():
    assert parse_day("2000-01-01") == date(2000, 1, 1)
    assert parse_day("2100-12-31") == date(2100, 12, 31)
    assert parse_instant("2100-12-31T23:59:59-12:00").tzinfo is not None
    assert parse_instant(datetime(2000, 1, 1, tzinfo=UTC)) == datetime(2000, 1, 1, tzinfo=UTC)


def test_decoding_names_the_field():
    with pytest.raises(msgspec.ValidationError, match=r"2100-12-31.*\$\.day"):
        _decode(b'{"day": "9999-12-31"}')


def test_isinstance_means_inside_the_bounds():
    assert isinstance(date(2030, 1, 1), Day)
    assert not isinstance(date(9999, 1, 1), Day)
    assert not isinstance(datetime(2030, 1, 1, tzinfo=UTC), Day)
    assert isinstance(datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=5))), Instant)
    assert not isinstance(datetime(2030, 1, 1), Instant)
