"""What Twilio says after taking a text: its signed status callback marks the delivery delivered or
bounced (the message log shows it), only ever forward; a permanent error suppresses the number in
that organisation; a forged, foreign or unknown report changes nothing and says nothing."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from spotless.app import create_app
from spotless.domain.messaging.models import MessagingSettings, Preference, SmsConsent
from spotless.domain.messaging.public import Recipient, request_message
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories.db import AppSessions, add, arrange
from tests.support.fake_twilio import FakeTwilio
from tests.support.identity import Member, signup
from tests.support.messaging import NOTICE, deliveries, job_runtime, run_deliveries

pytestmark = pytest.mark.usefixtures("app_sessions")
PHONE = "+14165550123"


async def _texting_client(http, owner_engine, owner: Member) -> uuid.UUID:
    made = await http.post("/v1/clients", json={"name": "Ada Client", "phone": PHONE}, headers=owner.headers)
    assert made.status_code == 201, made.text
    client_id = uuid.UUID(made.json()["id"])
    async with arrange(owner_engine) as db:
        await add(db, MessagingSettings(org_id=owner.org_id, quiet_start=None, quiet_end=None))  # texts any hour
        await add(
            db,
            Preference(
                org_id=owner.org_id, recipient_kind="client", recipient_id=client_id, kind=NOTICE.name, channel="sms"
            ),
        )
        await add(
            db,
            SmsConsent(
                org_id=owner.org_id, recipient_kind="client", recipient_id=client_id, phone=PHONE, source="office"
            ),
        )
    return client_id


async def _text(app_sessions: AppSessions, owner: Member, client_id: uuid.UUID, key: str) -> None:
    async with app_sessions.scoped(owner.org_id) as session:
        assert await request_message(
            session,
            org_id=owner.org_id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client_id),
            subject_type="booking",
            subject_id=uuid.UUID(int=3),
            send_key=key,
            params={"when": "Friday 9:00"},
        )


async def _report(http, fake: FakeTwilio, sent, status: str, code: str | None = None, **kw):
    url, body, headers = fake.signed_status(sent, status, code, **kw)
    return await http.post(urlsplit(url).path, content=body, headers=headers)


def _sms_row(rows, key: str):
    [row] = [r for r in rows if r.channel == "sms" and r.send_key == key]
    return row


async def test_status_callbacks_move_a_text_forward_and_the_log_shows_it(owner_engine, app_sessions, fake_twilio):
    app = create_app(make_settings(**fake_twilio.env()))
    async with app_client(app) as http, job_runtime(**fake_twilio.env()):
        owner = await signup(http)
        client_id = await _texting_client(http, owner_engine, owner)
        await _text(app_sessions, owner, client_id, "v1")
        await run_deliveries(owner_engine)
        [sent] = fake_twilio.messages
        assert sent.status_callback == (
            f"http://localhost:8000/v1/messaging/twilio/status/{owner.org_id}/"
            f"{_sms_row(await deliveries(owner_engine, owner.org_id), 'v1').id}"
        )

        assert (await _report(http, fake_twilio, sent, "sent")).status_code == 204
        assert _sms_row(await deliveries(owner_engine, owner.org_id), "v1").status == "sent"
        assert (await _report(http, fake_twilio, sent, "delivered")).status_code == 204
        assert (await _report(http, fake_twilio, sent, "delivered")).status_code == 204  # Twilio retried
        assert (await _report(http, fake_twilio, sent, "sent")).status_code == 204  # late, out of order
        row = _sms_row(await deliveries(owner_engine, owner.org_id), "v1")
        assert row.status == "delivered" and row.reported_at is not None

        log = await http.get(f"/v1/clients/{client_id}/messages", headers=owner.headers)
        assert log.status_code == 200, log.text
        [entry] = [e for e in log.json()["items"] if e["channel"] == "sms"]
        assert entry["status"] == "delivered" and entry["reported_at"] is not None and entry["to"] == PHONE


async def test_an_undelivered_text_is_bounced_and_its_number_suppressed_in_that_org(
    owner_engine, app_sessions, fake_twilio
):
    app = create_app(make_settings(**fake_twilio.env()))
    async with app_client(app) as http, job_runtime(**fake_twilio.env()):
        owner = await signup(http)
        other = await signup(http)
        client_id = await _texting_client(http, owner_engine, owner)
        other_client = await _texting_client(http, owner_engine, other)  # the same number, another org
        await _text(app_sessions, owner, client_id, "v1")
        await run_deliveries(owner_engine)
        [sent] = fake_twilio.messages

        assert (await _report(http, fake_twilio, sent, "undelivered", "30006")).status_code == 204
        assert (await _report(http, fake_twilio, sent, "delivered")).status_code == 204  # never back
        row = _sms_row(await deliveries(owner_engine, owner.org_id), "v1")
        assert row.status == "bounced" and "30006" in row.error
        log = (await http.get(f"/v1/clients/{client_id}/messages", headers=owner.headers)).json()
        assert [e["status"] for e in log["items"] if e["channel"] == "sms"] == ["bounced"]

        # The next text to that number in this organisation is not sent; the other's still is.
        await _text(app_sessions, owner, client_id, "v2")
        await _text(app_sessions, other, other_client, "v2")
        await run_deliveries(owner_engine)
        assert _sms_row(await deliveries(owner_engine, owner.org_id), "v2").status == "suppressed"
        assert _sms_row(await deliveries(owner_engine, other.org_id), "v2").status == "sent"
        assert len(fake_twilio.messages) == 2
        async with owner_engine.connect() as conn:
            suppressed = (await conn.execute(text("SELECT org_id, channel, address FROM message_suppressions"))).all()
        assert [(s.org_id, s.channel, s.address) for s in suppressed] == [(owner.org_id, "sms", PHONE)]


async def test_a_temporary_failure_bounces_without_suppressing(owner_engine, app_sessions, fake_twilio):
    app = create_app(make_settings(**fake_twilio.env()))
    async with app_client(app) as http, job_runtime(**fake_twilio.env()):
        owner = await signup(http)
        client_id = await _texting_client(http, owner_engine, owner)
        await _text(app_sessions, owner, client_id, "v1")
        await run_deliveries(owner_engine)
        [sent] = fake_twilio.messages
        assert (await _report(http, fake_twilio, sent, "undelivered", "30008")).status_code == 204
        assert _sms_row(await deliveries(owner_engine, owner.org_id), "v1").status == "bounced"
        async with owner_engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM message_suppressions"))).scalar() == 0


async def test_forged_foreign_and_unknown_reports_are_refused_alike(owner_engine, app_sessions, fake_twilio):
    app = create_app(make_settings(**fake_twilio.env()))
    async with app_client(app) as http, job_runtime(**fake_twilio.env()):
        owner = await signup(http)
        other = await signup(http)
        client_id = await _texting_client(http, owner_engine, owner)
        await _text(app_sessions, owner, client_id, "v1")
        await run_deliveries(owner_engine)
        [sent] = fake_twilio.messages
        delivery_id = _sms_row(await deliveries(owner_engine, owner.org_id), "v1").id

        url, body, headers = fake_twilio.signed_status(sent, "delivered")
        forged = await http.post(
            urlsplit(url).path, content=body, headers=dict(headers, **{"x-twilio-signature": "AAAA"})
        )
        assert forged.status_code == 400 and forged.json()["type"] == "/problems/invalid-signature"

        unknown_sid = await _report(http, fake_twilio, sent, "delivered", sid="SM" + "0" * 32)
        # Signed for a URL naming the other organisation (Twilio would never call it, but a
        # signature over it must still not reach this organisation's delivery).
        foreign = sent.__class__(
            **{**sent.__dict__, "status_callback": sent.status_callback.replace(str(owner.org_id), str(other.org_id))}
        )
        other_org = await _report(http, fake_twilio, foreign, "delivered")
        missing = sent.__class__(
            **{**sent.__dict__, "status_callback": sent.status_callback.replace(str(delivery_id), str(uuid.uuid4()))}
        )
        no_delivery = await _report(http, fake_twilio, missing, "delivered")
        for refused in (unknown_sid, other_org, no_delivery):
            assert refused.status_code == 404 and refused.json()["type"] == "/problems/not-found"
        assert unknown_sid.json()["detail"] == other_org.json()["detail"] == no_delivery.json()["detail"]
        assert _sms_row(await deliveries(owner_engine, owner.org_id), "v1").status == "sent"
