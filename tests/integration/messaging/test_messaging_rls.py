"""Messaging's rows stay in their organisation (row-level security as the app role), deliveries
are locked while attempted, and a delivery that gives up ends in the dead letters."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select, text

from spotless.domain.messaging.actors import deliver_message
from spotless.domain.messaging.delivery import DeadLettered
from spotless.domain.messaging.models import Delivery, MessagingSettings, Preference, Suppression, TemplateOverride
from spotless.domain.messaging.public import Recipient, request_message
from spotless.lib.jobs.broker import declare_jobs
from tests.support.factories.clients import new_client
from tests.support.factories.db import AppSessions, add, arrange
from tests.support.factories.identity import new_org
from tests.support.messaging import NOTICE, deliveries, job_runtime, pending_deliveries
from tests.support.smtp_refusing import RefusingSmtpServer

pytestmark = pytest.mark.usefixtures("app_sessions")


async def _org_with_rows(owner_engine, app_sessions: AppSessions) -> tuple[uuid.UUID, uuid.UUID]:
    async with arrange(owner_engine) as db:
        org = await new_org(db)
        client = await new_client(db, org.id)
        await add(db, MessagingSettings(org_id=org.id, reply_to="office@example.com"))
        await add(db, TemplateOverride(org_id=org.id, kind=NOTICE.name, subject="Hi"))
        await add(
            db,
            Preference(
                org_id=org.id, recipient_kind="client", recipient_id=client.id, kind=NOTICE.name, channel="none"
            ),
        )
        await add(db, Suppression(org_id=org.id, channel="email", address="gone@example.com", reason="550"))
    async with app_sessions.scoped(org.id) as session:
        await request_message(
            session,
            org_id=org.id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client.id),
            subject_type="booking",
            subject_id=uuid.UUID(int=5),
            send_key="k",
        )
    return org.id, client.id


async def test_each_organisation_sees_only_its_own_messaging_rows(owner_engine, app_sessions):
    a, _ = await _org_with_rows(owner_engine, app_sessions)
    b, b_client = await _org_with_rows(owner_engine, app_sessions)
    for model in (Delivery, MessagingSettings, Preference, Suppression, TemplateOverride):
        async with app_sessions.scoped(a) as session:
            orgs = set((await session.scalars(select(model.org_id))).all())
        assert orgs == {a}, model.__tablename__
    # Nor can A write into B, or make a request naming B's client.
    async with app_sessions.scoped(a) as session:
        changed = await session.execute(text("UPDATE deliveries SET status = 'failed' WHERE org_id = :b"), {"b": b})
        assert changed.rowcount == 0
    with pytest.raises(Exception, match=r"row-level security|violates foreign key"):
        async with app_sessions.scoped(a) as session:
            await request_message(
                session,
                org_id=b,
                kind=NOTICE.name,
                recipient=Recipient(kind="client", id=b_client),
                subject_type="booking",
                subject_id=uuid.UUID(int=6),
                send_key="k",
            )
    async with app_sessions.scoped(b) as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 2  # its own two channels


async def test_two_workers_on_one_delivery_send_once(owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer):
    async with arrange(owner_engine) as db:
        org = await new_org(db)
        client = await new_client(db, org.id)
    async with app_sessions.scoped(org.id) as session:
        await request_message(
            session,
            org_id=org.id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client.id),
            subject_type="booking",
            subject_id=uuid.UUID(int=5),
            send_key="k",
        )
    async with job_runtime(**refusing_smtp.env()):
        jobs = await pending_deliveries(owner_engine)
        # Each job delivered twice at the same moment (a redelivery racing the first attempt).
        await asyncio.gather(*(deliver_message(*job.args) for job in jobs for _ in range(2)))
    assert len(refusing_smtp.messages) == 1
    assert {r.channel: r.attempts for r in await deliveries(owner_engine, org.id)} == {"email": 1, "sms": 0}


def test_a_delivery_that_gives_up_is_dead_lettered_not_retried():
    broker = StubBroker()
    declare_jobs(broker)
    assert broker.get_actor("messaging.deliver").options["throws"] == (DeadLettered,)
