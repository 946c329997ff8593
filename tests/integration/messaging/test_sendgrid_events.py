"""SendGrid's signed Event Webhook: an ECDSA key made here stands for SendGrid's; mail goes to a
local SMTP server and the events SendGrid would post about it are signed in the test. Delivered
and bounced reach the log, only forward; a hard bounce suppresses the address in that
organisation only; forged, foreign and unknown events change nothing."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from spotless.app import create_app
from spotless.domain.messaging.public import Recipient, request_message
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories.db import AppSessions
from tests.support.identity import Member, signup
from tests.support.messaging import NOTICE, deliveries, job_runtime, run_deliveries

pytestmark = pytest.mark.usefixtures("app_sessions")
URL = "/v1/messaging/sendgrid/events"
ADDRESS = "ada@example.com"
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def _signed(events: list[dict], key: ec.EllipticCurvePrivateKey = KEY) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return body, {
        "content-type": "application/json",
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": stamp,
    }


def _event(row, event: str, **extra) -> dict:
    return {
        "email": row.address,
        "timestamp": int(time.time()),
        "event": event,
        "smtp-id": row.message_id,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "x.filter0001",
        "spotless_org": str(row.org_id),
        "spotless_delivery": str(row.id),
        **extra,
    }


_CLIENTS: dict[uuid.UUID, uuid.UUID] = {}


async def _mail(http, app_sessions: AppSessions, owner: Member, key: str) -> None:
    """A notice by email to the organisation's one client (made on first use)."""
    if owner.org_id not in _CLIENTS:
        made = await http.post("/v1/clients", json={"name": "Ada Client", "email": ADDRESS}, headers=owner.headers)
        assert made.status_code == 201, made.text
        _CLIENTS[owner.org_id] = uuid.UUID(made.json()["id"])
    async with app_sessions.scoped(owner.org_id) as session:
        await request_message(
            session,
            org_id=owner.org_id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=_CLIENTS[owner.org_id]),
            subject_type="booking",
            subject_id=uuid.UUID(int=5),
            send_key=key,
            params={"when": "Friday 9:00"},
        )


async def _email(owner_engine, org_id, key: str):
    [row] = [r for r in await deliveries(owner_engine, org_id) if r.channel == "email" and r.send_key == key]
    return row


async def test_delivered_and_bounced_reach_the_log_and_a_hard_bounce_suppresses(
    owner_engine, app_sessions, smtp_server
) -> None:
    app = create_app(make_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC))
    async with app_client(app) as http, job_runtime(**smtp_server.env()):
        a, b = await signup(http), await signup(http)
        for owner in (a, b):
            await _mail(http, app_sessions, owner, "k1")
            await _mail(http, app_sessions, owner, "k2")
        await run_deliveries(owner_engine)
        a1, a2 = await _email(owner_engine, a.org_id, "k1"), await _email(owner_engine, a.org_id, "k2")
        b1 = await _email(owner_engine, b.org_id, "k1")
        assert a1.status == a2.status == b1.status == "sent"

        stranger = {"email": "x@example.com", "event": "bounce", "smtp-id": "<other@elsewhere>", "type": "bounce"}
        foreign = _event(a1, "bounce", type="bounce", spotless_org=str(b.org_id))  # A's delivery, B's name
        batch = [
            _event(a1, "processed"),
            _event(a1, "delivered", response="250 OK"),
            _event(a2, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 no such user"),
            _event(b1, "delivered"),
            _event(b1, "bounce", type="bounce", **{"smtp-id": "<not-this-one@spotless.test>"}),
            stranger,
            foreign,
            {**_event(a1, "bounce", type="bounce"), "spotless_delivery": str(uuid.uuid4())},
        ]
        body, headers = _signed(batch)
        answered = await http.post(URL, content=body, headers=headers)
        assert answered.status_code == 204, answered.text
        # SendGrid retries, and a late delivered arrives after the bounce: nothing moves back.
        body, headers = _signed([*batch, _event(a2, "delivered")])
        assert (await http.post(URL, content=body, headers=headers)).status_code == 204

        a1, a2 = await _email(owner_engine, a.org_id, "k1"), await _email(owner_engine, a.org_id, "k2")
        assert a1.status == "delivered" and a1.reported_at is not None
        assert a2.status == "bounced" and "no such user" in a2.error
        assert (await _email(owner_engine, b.org_id, "k1")).status == "delivered"  # the mismatched bounce ignored
        log = (await http.get(f"/v1/clients/{a2.recipient_id}/messages", headers=a.headers)).json()
        assert {e["status"] for e in log["items"] if e["channel"] == "email"} == {"delivered", "bounced"}

        # The bounced address is suppressed in A only.
        async with owner_engine.connect() as conn:
            rows = (await conn.execute(text("SELECT org_id, channel, address FROM message_suppressions"))).all()
        assert [(r.org_id, r.channel, r.address) for r in rows] == [(a.org_id, "email", ADDRESS)]
        await _mail(http, app_sessions, a, "k3")
        await _mail(http, app_sessions, b, "k3")
        await run_deliveries(owner_engine)
        assert (await _email(owner_engine, a.org_id, "k3")).status == "suppressed"
        assert (await _email(owner_engine, b.org_id, "k3")).status == "sent"


async def test_a_soft_bounce_does_not_suppress_and_a_dropped_invalid_address_does(
    owner_engine, app_sessions, smtp_server
) -> None:
    app = create_app(make_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC))
    async with app_client(app) as http, job_runtime(**smtp_server.env()):
        owner = await signup(http)
        await _mail(http, app_sessions, owner, "k1")
        await _mail(http, app_sessions, owner, "k2")
        await run_deliveries(owner_engine)
        blocked, dropped = (
            await _email(owner_engine, owner.org_id, "k1"),
            await _email(owner_engine, owner.org_id, "k2"),
        )
        body, headers = _signed([_event(blocked, "bounce", type="blocked", reason="421 try later")])
        assert (await http.post(URL, content=body, headers=headers)).status_code == 204
        assert (await _email(owner_engine, owner.org_id, "k1")).status == "bounced"
        async with owner_engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM message_suppressions"))).scalar() == 0
        body, headers = _signed([_event(dropped, "dropped", reason="Bounced Address")])
        assert (await http.post(URL, content=body, headers=headers)).status_code == 204
        assert (await _email(owner_engine, owner.org_id, "k2")).status == "bounced"
        async with owner_engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM message_suppressions"))).scalar() == 1


async def test_unsigned_forged_and_tampered_batches_are_refused(owner_engine, app_sessions, smtp_server) -> None:
    app = create_app(make_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC))
    async with app_client(app) as http, job_runtime(**smtp_server.env()):
        owner = await signup(http)
        await _mail(http, app_sessions, owner, "k1")
        await run_deliveries(owner_engine)
        row = await _email(owner_engine, owner.org_id, "k1")
        events = [_event(row, "bounce", type="bounce")]
        body, headers = _signed(events)
        unsigned = {"content-type": "application/json"}
        forged = _signed(events, ec.generate_private_key(ec.SECP256R1()))[1]
        tampered = body.replace(b'"bounce"', b'"delivered"', 1)
        for content, sent_headers in ((body, unsigned), (body, forged), (tampered, headers)):
            refused = await http.post(URL, content=content, headers=sent_headers)
            assert refused.status_code == 400 and refused.json()["type"] == "/problems/invalid-signature"
        garbage, garbage_headers = b"{not json", _signed([])[1]
        garbage_headers["x-twilio-email-event-webhook-signature"] = base64.b64encode(
            KEY.sign(
                garbage_headers["x-twilio-email-event-webhook-timestamp"].encode() + garbage, ec.ECDSA(hashes.SHA256())
            )
        ).decode()
        bad = await http.post(URL, content=garbage, headers=garbage_headers)
        assert bad.status_code == 400 and bad.json()["type"] == "/problems/invalid-body"
    assert (await _email(owner_engine, owner.org_id, "k1")).status == "sent"

    # Without a configured key nothing is believed.
    async with app_client(create_app(make_settings())) as http:
        assert (await http.post(URL, content=body, headers=headers)).status_code == 400
