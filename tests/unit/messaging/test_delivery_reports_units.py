"""Reading what providers report after taking a message: Twilio's statuses and error codes,
SendGrid's events, and the unique args our SendGrid mail carries so its events find the delivery."""

from __future__ import annotations

import json
import uuid
from datetime import time

import pytest

from spotless.domain.messaging.delivery import Contact, OrgProfile, _build_email
from spotless.domain.messaging.models import Delivery
from spotless.domain.messaging.rendering import Rendered
from spotless.domain.messaging.reports import twilio_report
from spotless.domain.messaging.sendgrid_events import parse
from spotless.settings import load_settings
from tests.support.messaging import NOTICE


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        ("queued", None, (None, None, False)),
        ("sent", None, (None, None, False)),
        ("delivered", None, ("delivered", None, False)),
        ("undelivered", "30006", ("bounced", "30006 landline or unreachable carrier", True)),
        ("failed", "21610", ("bounced", "21610 the number sent STOP", True)),
        ("undelivered", "30008", ("bounced", "30008 twilio undelivered", False)),  # unknown: not for good
        ("undelivered", None, ("bounced", "twilio undelivered", False)),
    ],
)
def test_twilio_statuses(status, code, expected):
    assert twilio_report(status, code) == expected


def _email(mode: str):
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://x@h/db",
            "REDIS_URL": "redis://h",
            "AUTH_SECRET_KEY": "k" * 40,
            "EMAIL_MODE": mode,
            "SENDGRID_API_KEY": "SG.x",
        }
    )
    row = Delivery(id=uuid.uuid4(), org_id=uuid.uuid4(), kind=NOTICE.name, channel="email")
    profile = OrgProfile("Sparkle", "America/Toronto", None, None, time(21), time(8))
    message = _build_email(
        settings,
        row,
        NOTICE,
        Rendered("Hi", "Hello", None, None),
        Contact("Ada", "a@example.com", None),
        profile,
        None,
        [],
    )
    return row, message


def test_sendgrid_mail_names_its_delivery_for_the_event_webhook():
    row, message = _email("sendgrid")
    assert json.loads(message["X-SMTPAPI"]) == {
        "unique_args": {"spotless_org": str(row.org_id), "spotless_delivery": str(row.id)}
    }
    assert _email("smtp")[1]["X-SMTPAPI"] is None  # other servers would pass it on to the recipient


def test_sendgrid_events_that_are_not_ours_or_say_nothing_are_left_out():
    org, delivery = uuid.uuid4(), uuid.uuid4()
    ours = {"spotless_org": str(org), "spotless_delivery": str(delivery), "smtp-id": "<m@x>"}
    body = json.dumps(
        [
            {"event": "bounce", "type": "bounce", "email": "reset@example.com"},  # no unique args
            {**ours, "event": "open"},
            {**ours, "event": "deferred"},
            {**ours, "event": "bounce", "type": "blocked", "reason": "421"},
            {**ours, "event": "dropped", "reason": "Spam Reporting Address"},
            {**ours, "event": "dropped", "reason": "Invalid"},
            {**ours, "event": "delivered"},
        ]
    ).encode()
    assert [(r.outcome, r.permanent, r.message_id) for r in parse(body)] == [
        ("bounced", False, "<m@x>"),
        ("bounced", False, "<m@x>"),
        ("bounced", True, "<m@x>"),
        ("delivered", False, "<m@x>"),
    ]
