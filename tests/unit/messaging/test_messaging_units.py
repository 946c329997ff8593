"""Messaging's pure parts: rendering in the sandbox, quiet hours across midnight and DST, phone
numbers, unsubscribe tokens, Twilio's signature, settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from spotless.domain.messaging.delivery import OrgProfile, quiet_until
from spotless.domain.messaging.kinds import MessageKind
from spotless.domain.messaging.preferences import normalize_phone
from spotless.domain.messaging.rendering import RenderError, render, validate_override
from spotless.domain.messaging.twilio_inbound import signature
from spotless.domain.messaging.unsubscribe import UnsubscribeClaim, make_token, read_token
from spotless.settings import ConfigError, load_settings

TEMPLATES = Path(__file__).parents[2] / "support" / "messaging_templates"
ORG = {"name": "Sparkle & Co", "reply_to": "office@sparkle.example", "logo_url": None}


async def _context(session, org_id, params):  # pragma: no cover (not called here)
    return {}


KIND = MessageKind(
    name="unit.notice",
    audience="client",
    transactional=True,
    channels=("email", "sms"),
    template="test_notice",
    template_dir=TEMPLATES,
    build_context=_context,
    sample_context=lambda: {"visit": {"when": "Tuesday"}, "recipient": {"name": "Ada"}},
)


def test_html_is_autoescaped_and_text_is_not():
    context = {"visit": {"when": "<script>alert(1)</script>"}, "recipient": {"name": "O'Brien & Sons"}}
    rendered = render(KIND, context, org=ORG)
    assert "<script>" not in (rendered.html or "") and "&lt;script&gt;" in (rendered.html or "")
    assert "Sparkle &amp; Co" in (rendered.html or "")
    assert "O'Brien & Sons" in rendered.text and "<script>alert(1)</script>" in rendered.text
    assert rendered.text.rstrip().endswith("Sparkle & Co <office@sparkle.example>")


def test_a_subject_is_one_line_whatever_the_wording():
    rendered = render(
        KIND, KIND.sample_context(), {"subject": "Hello\r\nBcc: victim@example.com\n{{ visit.when }}"}, org=ORG
    )
    assert rendered.subject == "Hello Bcc: victim@example.com Tuesday"
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_strict_undefined_and_the_sandbox():
    with pytest.raises(RenderError) as missing:
        render(KIND, {"recipient": {"name": "Ada"}}, org=ORG)
    assert "visit" in str(missing.value)
    assert "text" in validate_override(KIND, {"text": "{{ visit.__class__.__base__.__subclasses__() }}"})
    assert "text" in validate_override(KIND, {"text": "{{ lipsum.__globals__['os'] }}"})
    assert "html" in validate_override(KIND, {"html": "{{ self.__init__.__globals__ }}"})
    assert validate_override(KIND, {"text": "{{ visit.when | upper }} {{ org.name }}"}) == {}
    too_long = validate_override(KIND, {"sms": "x" * 700})
    assert "sms" in too_long


@pytest.mark.parametrize(
    ("local", "start", "end", "until_local"),
    [
        ("2026-06-10 22:30", time(21), time(8), "2026-06-11 08:00"),  # spans midnight, before it
        ("2026-06-11 03:00", time(21), time(8), "2026-06-11 08:00"),  # after midnight
        ("2026-06-11 12:00", time(21), time(8), None),
        ("2026-06-11 08:00", time(21), time(8), None),  # the end itself is not quiet
        ("2026-06-11 13:30", time(13), time(14), "2026-06-11 14:00"),  # a window inside one day
        # Spring forward (2026-03-08, 02:00 -> 03:00 in Toronto): 08:00 local is 12:00 UTC, not 13:00.
        ("2026-03-07 23:00", time(21), time(8), "2026-03-08 08:00"),
        # Fall back (2026-11-01): the night is an hour longer; 08:00 local is 13:00 UTC.
        ("2026-10-31 23:00", time(21), time(8), "2026-11-01 08:00"),
    ],
)
def test_quiet_hours_in_the_organisations_zone(local, start, end, until_local):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Toronto")
    now = datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(UTC)
    profile = OrgProfile("Org", "America/Toronto", None, None, start, end)
    until = quiet_until(profile, now)
    if until_local is None:
        assert until is None
    else:
        assert until == datetime.fromisoformat(until_local).replace(tzinfo=zone).astimezone(UTC)
    assert quiet_until(OrgProfile("Org", "America/Toronto", None, None, None, None), now) is None


def test_dst_ends_map_to_the_right_utc_instants():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Toronto")
    profile = OrgProfile("Org", "America/Toronto", None, None, time(21), time(8))
    spring = quiet_until(profile, datetime(2026, 3, 8, 5, 0, tzinfo=UTC))  # 00:00 EST
    assert spring == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT
    autumn = quiet_until(profile, datetime(2026, 11, 1, 4, 0, tzinfo=UTC))  # 00:00 EDT
    assert autumn == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert spring.astimezone(zone).hour == autumn.astimezone(zone).hour == 8


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(416) 555-0123", "+14165550123"),
        ("1-416-555-0123", "+14165550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("555-0123", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_numbers_become_e164(raw, e164):
    assert normalize_phone(raw) == e164


def _settings(**env: str):
    return load_settings(
        {"DATABASE_URL": "postgresql://x@h/db", "REDIS_URL": "redis://h", "AUTH_SECRET_KEY": "k" * 40, **env}
    )


def test_unsubscribe_tokens_are_signed_and_name_only_what_to_stop():
    settings = _settings()
    claim = UnsubscribeClaim(uuid.uuid4(), "client", uuid.uuid4(), "booking.reminder")
    token = make_token(settings, claim)
    assert read_token(settings, token) == claim
    payload, sig = token.split(".")
    assert read_token(settings, payload + "." + sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")) is None
    assert read_token(settings, "garbage") is None
    assert read_token(_settings(AUTH_SECRET_KEY="z" * 40), token) is None  # another key
    assert read_token(_settings(MESSAGING_UNSUBSCRIBE_SECRET="s" * 40), token) is None


def test_twilio_signature_matches_twilios_documented_example():
    # Twilio's signature-validation sample (TwilioDevEd/api-snippets, security/signature_validation).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ]
    assert signature("12345", url, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


def test_email_and_sms_modes_are_checked():
    assert _settings(EMAIL_MODE="sendgrid", SENDGRID_API_KEY="SG.x").email.mode == "sendgrid"
    assert _settings(SMS_MODE="twilio").messaging.sms.mode == "twilio"
    assert _settings().messaging.sms.mode == "log"
    assert _settings(APP_ENV="dev").email.max_attempts == 8
    with pytest.raises(ConfigError, match="SMS_MODE"):
        _settings(SMS_MODE="pigeon")
    with pytest.raises(ConfigError, match="EMAIL_MAX_ATTEMPTS"):
        _settings(EMAIL_MAX_ATTEMPTS="0")
