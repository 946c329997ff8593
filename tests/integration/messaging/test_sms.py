"""Texts through a local fake of Twilio's REST API: consent, preference, STOP/START over the
signed inbound webhook, quiet hours in the organisation's zone (deferred, not dropped)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from spotless.app import create_app
from spotless.domain.messaging.models import MessagingSettings, Preference, SmsConsent
from spotless.domain.messaging.public import Recipient, request_message
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories.clients import new_client
from tests.support.factories.db import AppSessions, add, arrange
from tests.support.factories.identity import new_org
from tests.support.fake_twilio import FROM_NUMBER, FakeTwilio
from tests.support.messaging import NOTICE, deliveries, job_runtime, pending_deliveries, run_deliveries

pytestmark = pytest.mark.usefixtures("app_sessions")
PHONE = "+14165550123"
WEBHOOK_URL = "https://api.spotless.test/v1/messaging/twilio/inbound"


async def _world(
    owner_engine, *, consent: bool = True, quiet: tuple[time, time] | None = None, zone: str = "America/Toronto"
) -> tuple[uuid.UUID, uuid.UUID]:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning", timezone=zone)
        client = await new_client(db, org.id, name="Ada Client", phone="(416) 555-0123")
        await add(
            db,
            MessagingSettings(
                org_id=org.id, quiet_start=quiet[0] if quiet else None, quiet_end=quiet[1] if quiet else None
            ),
        )
        await add(
            db,
            Preference(org_id=org.id, recipient_kind="client", recipient_id=client.id, kind=NOTICE.name, channel="sms"),
        )
        if consent:
            await add(
                db,
                SmsConsent(
                    org_id=org.id, recipient_kind="client", recipient_id=client.id, phone=PHONE, source="office"
                ),
            )
    return org.id, client.id


async def _request(app_sessions: AppSessions, org_id, client_id, key: str = "v1") -> bool:
    async with app_sessions.scoped(org_id) as session:
        return await request_message(
            session,
            org_id=org_id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client_id),
            subject_type="booking",
            subject_id=uuid.UUID(int=3),
            send_key=key,
            params={"when": "Friday 9:00"},
        )


def _sms(rows, key: str = "v1"):
    [row] = [r for r in rows if r.channel == "sms" and r.send_key == key]
    return row


async def test_a_consented_text_goes_through_twilio_once(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    org_id, client_id = await _world(owner_engine)
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**fake_twilio.env()):
        await run_deliveries(owner_engine, twice=True)
    [sent] = fake_twilio.messages
    assert (sent.to, sent.from_) == (PHONE, FROM_NUMBER)
    assert sent.body == "Sparkle Cleaning: your visit on Friday 9:00 is confirmed."
    rows = await deliveries(owner_engine, org_id)
    sms = _sms(rows)
    assert sms.status == "sent" and sms.provider_id == sent.sid and sms.address == PHONE
    [email] = [r for r in rows if r.channel == "email"]
    assert email.status == "skipped" and email.error == "preference: sms"


async def test_no_consent_no_text(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    org_id, client_id = await _world(owner_engine, consent=False)
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**fake_twilio.env()):
        await run_deliveries(owner_engine)
    assert fake_twilio.messages == []
    sms = _sms(await deliveries(owner_engine, org_id))
    assert sms.status == "skipped" and "consent" in sms.error


async def test_stop_stops_texts_and_start_resumes_them(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    org_id, client_id = await _world(owner_engine)
    app = create_app(make_settings(**fake_twilio.env(), TWILIO_WEBHOOK_URL=WEBHOOK_URL))
    async with app_client(app) as http, job_runtime(**fake_twilio.env()):
        body, headers = fake_twilio.signed_inbound(WEBHOOK_URL, "+1 416 555 0123", "Stop")
        forged = dict(headers, **{"x-twilio-signature": "AAAA"})
        refused = await http.post("/v1/messaging/twilio/inbound", content=body, headers=forged)
        assert refused.status_code == 400 and refused.json()["type"] == "/problems/invalid-signature"
        async with owner_engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM sms_opt_outs"))).scalar() == 0

        stop = await http.post("/v1/messaging/twilio/inbound", content=body, headers=headers)
        assert stop.status_code == 200 and "<Response>" in stop.text
        await _request(app_sessions, org_id, client_id, "after-stop")
        await run_deliveries(owner_engine)
        assert _sms(await deliveries(owner_engine, org_id), "after-stop").status == "suppressed"
        assert fake_twilio.messages == []  # Twilio was not asked

        body, headers = fake_twilio.signed_inbound(WEBHOOK_URL, PHONE, "START")
        assert (await http.post("/v1/messaging/twilio/inbound", content=body, headers=headers)).status_code == 200
        await _request(app_sessions, org_id, client_id, "after-start")
        await run_deliveries(owner_engine)
        assert _sms(await deliveries(owner_engine, org_id), "after-start").status == "sent"
        assert len(fake_twilio.messages) == 1


async def test_twilio_refusing_an_unsubscribed_number_opts_it_out(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    org_id, client_id = await _world(owner_engine)
    fake_twilio.unsubscribed.add(PHONE)
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**fake_twilio.env()):
        await run_deliveries(owner_engine)
    sms = _sms(await deliveries(owner_engine, org_id))
    assert sms.status == "refused" and "21610" in sms.error
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT phone FROM sms_opt_outs"))).scalars().all() == [PHONE]


async def test_quiet_hours_defer_a_text_to_their_end(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    zone = ZoneInfo("America/Toronto")
    local = datetime.now(zone)
    start, end = (
        (local - timedelta(hours=1)).time().replace(microsecond=0),
        (local + timedelta(hours=1)).time().replace(microsecond=0),
    )
    org_id, client_id = await _world(owner_engine, quiet=(start, end))
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**fake_twilio.env()):
        await run_deliveries(owner_engine)
        sms = _sms(await deliveries(owner_engine, org_id))
        assert sms.status == "queued" and fake_twilio.messages == []
        expected_end = (local + timedelta(hours=1)).replace(microsecond=0).astimezone(UTC)
        assert abs(sms.not_before - expected_end) < timedelta(seconds=2)
        [deferred] = await pending_deliveries(owner_engine)
        assert deferred.available_at == sms.not_before
        await run_deliveries(owner_engine)  # delivered early (a sweep, a redelivery): still waits
        assert fake_twilio.messages == []
        assert _sms(await deliveries(owner_engine, org_id)).status == "queued"

        # The end of the quiet hours comes: the deferred job sends it.
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE deliveries SET not_before = now() - interval '1 second' WHERE id = :id"), {"id": sms.id}
            )
            await conn.execute(text("UPDATE messaging_settings SET quiet_start = NULL, quiet_end = NULL"))
            await conn.execute(text("UPDATE job_outbox SET sent_at = NULL WHERE id = :id"), {"id": deferred.id})
        await run_deliveries(owner_engine)
    assert len(fake_twilio.messages) == 1
    assert _sms(await deliveries(owner_engine, org_id)).status == "sent"


async def test_a_twilio_outage_is_retried(owner_engine, app_sessions, fake_twilio: FakeTwilio):
    org_id, client_id = await _world(owner_engine)
    fake_twilio.fail_next = [503]
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**fake_twilio.env(), EMAIL_RETRY_BACKOFF_SECONDS="0"):
        await run_deliveries(owner_engine)
        assert _sms(await deliveries(owner_engine, org_id)).status == "queued"
        await run_deliveries(owner_engine)
    assert _sms(await deliveries(owner_engine, org_id)).status == "sent"
    assert len(fake_twilio.messages) == 1
