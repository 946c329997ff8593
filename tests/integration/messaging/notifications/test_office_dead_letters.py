"""The office's daily dead-letter notice covers both kinds of dead letter: messages that failed
for good (`deliveries` rows) and the organisation's background jobs that ran out of retries
(Dramatiq's dead letters in Redis). One notice a day to that organisation's owners and admins,
none to another organisation, none for a system job's dead letter."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from dramatiq import Message

from spotless.domain.messaging.notifications.office import report_dead_letters
from tests.integration.messaging.notifications.conftest import run_deliveries
from tests.support.factories import arrange
from tests.support.factories.identity import new_membership, new_org, new_user
from tests.support.messaging import deliveries, job_runtime

DAY_MS = 24 * 3600 * 1000


async def _bury(redis, settings, redis_id: str, message: Message, *, age_ms: int = 0) -> None:
    """A message in the dead-letter set as Dramatiq leaves it after the last retry."""
    key = f"{settings.jobs.namespace}:{message.queue_name}.XQ"
    await redis.zadd(key, {redis_id: int(time.time() * 1000) - age_ms})
    await redis.hset(f"{key}.msgs", redis_id, message.encode())


def _job(org_id: uuid.UUID | None, actor: str = "exports.run") -> Message:
    args = (str(org_id), str(uuid.uuid4())) if org_id else ()
    options = {"traceback": "Traceback (most recent call last):\n  ...\nRuntimeError: storage down"}
    return Message(queue_name="exports", actor_name=actor, args=args, kwargs={}, options=options)


async def test_a_dead_job_tells_its_own_office_once_a_day(owner_engine, redis, settings, smtp_server) -> None:
    async with arrange(owner_engine) as db:
        a = await new_org(db, name="Sparkle Cleaning")
        b = await new_org(db, name="Other Co")
        owner_a, owner_b = await new_user(db), await new_user(db)
        await new_membership(db, a.id, owner_a.id, "owner")
        await new_membership(db, b.id, owner_b.id, "owner")
    await _bury(redis, settings, "rid-a", _job(a.id))
    await _bury(redis, settings, "rid-b-old", _job(b.id), age_ms=2 * DAY_MS)  # died before the window
    await _bury(redis, settings, "rid-sys", _job(None, "system.purge_outbox"))  # nobody's office

    now = datetime.now(UTC).isoformat()
    async with job_runtime(**smtp_server.env()):
        await report_dead_letters(now=now)
        assert await run_deliveries(owner_engine, twice=True) == 1
        [mail] = await smtp_server.wait_for(1)
        assert [r.lower() for r in mail.rcpt_tos] == [owner_a.email.lower()]
        assert "1 background job(s) failed in the last day" in str(mail.message["Subject"])
        assert "exports.run: 1" in mail.body and "Sparkle Cleaning" in mail.body
        assert "storage down" not in mail.body  # the traceback is the admins' dlq view, not email

        # A later run the same day, with a new dead job: nothing more until tomorrow.
        await _bury(redis, settings, "rid-a-2", _job(a.id))
        await report_dead_letters(now=now)
        assert await run_deliveries(owner_engine) == 0
    await asyncio.sleep(0.2)
    assert len(smtp_server.messages) == 1
    rows = await deliveries(owner_engine)
    assert [(r.org_id, r.kind, r.status) for r in rows] == [(a.id, "office.dead_letters", "sent")]
    assert await deliveries(owner_engine, b.id) == []


async def test_failed_messages_and_dead_jobs_share_one_notice(owner_engine, redis, settings, smtp_server) -> None:
    from sqlalchemy import text

    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning")
        owner = await new_user(db)
        await new_membership(db, org.id, owner.id, "owner")
    async with owner_engine.begin() as conn:
        delivery_id = uuid.uuid4()
        await conn.execute(
            text(
                "INSERT INTO deliveries (id, org_id, kind, subject_type, subject_id, send_key, recipient_kind,"
                " recipient_id, channel, status, params, attempts, created_at, updated_at)"
                " VALUES (:id, :org, 'booking.reminder', 'booking', :id, 'k', 'user', :user, 'email', 'failed',"
                " '{}', 8, now(), now())"
            ),
            {"id": delivery_id, "org": org.id, "user": owner.id},
        )
    # That delivery's own job dead-lettered too: it is one failure, counted as the message.
    deliver = Message(
        queue_name="email", actor_name="messaging.deliver", args=(str(org.id), str(delivery_id)), kwargs={}, options={}
    )
    await _bury(redis, settings, "rid-deliver", deliver)
    await _bury(redis, settings, "rid-job", _job(org.id, "billing.auto_charge"))
    async with job_runtime(**smtp_server.env()):
        await report_dead_letters(now=datetime.now(UTC).isoformat())
        await run_deliveries(owner_engine)
    [mail] = await smtp_server.wait_for(1)
    subject = str(mail.message["Subject"])
    assert "1 message(s) could not be delivered, 1 background job(s) failed" in subject
    assert "booking.reminder: 1" in mail.body and "billing.auto_charge: 1" in mail.body
    assert "messaging.deliver" not in mail.body
