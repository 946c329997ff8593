"""The one delivery path end to end: request (in the caller's transaction) -> outbox -> job ->
rendered -> recorded; a repeat request and a redelivered job change nothing."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import text

from spotless.domain.messaging.public import Recipient, office_recipients, request_message
from tests.support.factories.clients import new_client
from tests.support.factories.db import AppSessions, arrange
from tests.support.factories.identity import new_member, new_org
from tests.support.messaging import NOTICE, deliveries, job_runtime, pending_deliveries, run_deliveries

pytestmark = pytest.mark.usefixtures("app_sessions")


async def _world(owner_engine, **client: object) -> tuple[uuid.UUID, uuid.UUID]:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning")
        found = await new_client(db, org.id, **{"name": "Ada Client", "email": "ada@example.com", **client})
    return org.id, found.id


async def _request(app_sessions: AppSessions, org_id, client_id, key: str = "v1", **params: object) -> bool:
    async with app_sessions.scoped(org_id) as session:
        return await request_message(
            session,
            org_id=org_id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client_id),
            subject_type="booking",
            subject_id=uuid.UUID(int=1),
            send_key=key,
            params={"when": "Friday 9:00", **params},
        )


async def test_log_mode_end_to_end(owner_engine, app_sessions, caplog):
    org_id, client_id = await _world(owner_engine)
    assert await _request(app_sessions, org_id, client_id) is True
    assert await _request(app_sessions, org_id, client_id) is False  # the same request: a no-op
    assert len(await pending_deliveries(owner_engine)) == 2  # one per channel the kind can use
    caplog.set_level(logging.INFO, logger="spotless.messaging.email")
    async with job_runtime():
        assert await run_deliveries(owner_engine, twice=True) == 2
    rows = {r.channel: r for r in await deliveries(owner_engine, org_id)}
    assert rows["email"].status == "logged"
    assert rows["email"].address == "ada@example.com"
    assert rows["email"].summary == "Visit confirmed for Friday 9:00"
    assert rows["email"].attempts == 1  # the redelivery found it done
    assert rows["email"].message_id == f"<{rows['email'].id}@spotless.local>"
    assert rows["sms"].status == "skipped" and rows["sms"].error == "preference: email"
    logged = [r for r in caplog.records if r.getMessage().startswith("email (EMAIL_MODE=log")]
    assert len(logged) == 1 and "confirmed" not in str(getattr(logged[0], "body", ""))


async def test_a_rolled_back_request_sends_nothing(owner_engine, app_sessions):
    org_id, client_id = await _world(owner_engine)
    with pytest.raises(RuntimeError):
        async with app_sessions.scoped(org_id) as session:
            await request_message(
                session,
                org_id=org_id,
                kind=NOTICE.name,
                recipient=Recipient(kind="client", id=client_id),
                subject_type="booking",
                subject_id=uuid.UUID(int=1),
                send_key="v1",
            )
            raise RuntimeError("the caller's transaction fails")
    assert await pending_deliveries(owner_engine) == []
    assert await deliveries(owner_engine, org_id) == []


async def test_context_none_is_skipped_and_a_raise_retries(owner_engine, app_sessions):
    org_id, client_id = await _world(owner_engine)
    await _request(app_sessions, org_id, client_id, key="gone", cancelled=True)
    await _request(app_sessions, org_id, client_id, key="boom", explode=True)
    async with job_runtime():
        rows = await pending_deliveries(owner_engine)
        from spotless.domain.messaging.actors import deliver_message

        outcomes = []
        for row in rows:
            try:
                await deliver_message(*row.args)
                outcomes.append("ok")
            except RuntimeError:
                outcomes.append("raised")
    by_key = {(r.send_key, r.channel): r for r in await deliveries(owner_engine, org_id)}
    assert by_key[("gone", "email")].status == "skipped" and by_key[("gone", "email")].error == "no longer due"
    assert by_key[("boom", "email")].status == "queued"  # rolled back: the job's retry tries again
    assert by_key[("boom", "email")].attempts == 0
    assert "raised" in outcomes


async def test_a_recipient_of_another_organisation_is_refused(owner_engine, app_sessions):
    org_id, _ = await _world(owner_engine)
    _, foreign_client = await _world(owner_engine)
    with pytest.raises(Exception, match=r"fk_deliveries_client_id_client|violates foreign key"):
        await _request(app_sessions, org_id, foreign_client)
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM deliveries"))).scalar() == 0


async def test_office_recipients_are_the_members_holding_the_permission(owner_engine, app_sessions):
    async with arrange(owner_engine) as db:
        org = await new_org(db)
        owner = await new_member(db, org.id, "owner")
        admin = await new_member(db, org.id, "admin")
        await new_member(db, org.id, "dispatcher")
        await new_member(db, org.id, "admin", active=False)
        other = await new_org(db)
        await new_member(db, other.id, "owner")
    async with app_sessions.scoped(org.id) as session:
        found = await office_recipients(session, org.id, "settings.manage")
    assert found == [Recipient(kind="user", id=owner.user_id), Recipient(kind="user", id=admin.user_id)]
