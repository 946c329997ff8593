import uuid

import pytest

from spotless.domain.identity import validation
from spotless.domain.identity.session_cache import SessionState, parse
from spotless.lib.errors import FieldError


def test_timezones_are_iana_names():
    assert validation.timezone("America/Toronto") == "America/Toronto"
    for bad in ("EST5EDT ", "Mars/Olympus", "localtime", ""):
        with pytest.raises(FieldError):
            validation.timezone(bad)


def test_currencies_are_iso_4217():
    assert validation.currency("cad") == "CAD"
    for bad in ("XXX", "US", "DOLLAR", "BTC"):
        with pytest.raises(FieldError):
            validation.currency(bad)


def test_slugs():
    assert validation.slug("sparkle-co") == "sparkle-co"
    for bad in ("-edge", "edge-", "UPPER", "a b", "admin", "x" * 64):
        with pytest.raises(FieldError):
            validation.slug(bad)
    assert validation.slugify("Ménage Étoile Inc.") == "menage-etoile-inc"
    assert validation.slugify("!!!").startswith("org-")
    assert validation.SLUG_RE.match(validation.with_suffix("a" * 63))


def test_locales():
    for good in ("en", "en-CA", "fr-CA", "zh-Hant-TW", "es-419"):
        assert validation.locale(good) == good
    for bad in ("english", "en_CA", "EN-ca"):
        with pytest.raises(FieldError):
            validation.locale(bad)


def test_business_hours_are_sorted_and_checked():
    hours = validation.business_hours({"tue": [{"start": "13:00", "end": "17:00"}, {"start": "08:00", "end": "12:00"}]})
    assert hours == {"tue": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]}
    for bad in (
        {"someday": []},
        {"mon": [{"start": "9:00", "end": "10:00"}]},
        {"mon": [{"start": "10:00", "end": "10:00"}]},
        {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:59", "end": "13:00"}]},
    ):
        with pytest.raises(FieldError):
            validation.business_hours(bad)


def test_session_cache_values_round_trip():
    sid = uuid.uuid4()
    active = SessionState(sid, usable=True, role="dispatcher", password_change_required=True)
    assert parse(sid, active.encode()) == SessionState(sid, True, "dispatcher", True)
    assert parse(sid, SessionState(sid, usable=False).encode()).usable is False
    assert parse(sid, b"something-else") is None  # unknown format: treated as a miss, re-read from Postgres
