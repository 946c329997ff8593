"""A message a worker's job requests (a subscriber of BookingConfirmed asking for the client's
confirmation) reaches the SMTP server straight from that job's commit: the worker hands its own
outbox rows to the broker as the API does. No scheduler runs here, so without that hand-over the
delivery job would sit in the outbox until a sweep that never comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.scheduling.events import BookingConfirmed
from spotless.domain.scheduling.models import Booking
from spotless.lib.events import emit
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.jobs.runtime import build_runtime
from spotless.settings import load_settings
from tests.conftest import test_env
from tests.support import processes
from tests.support.factories import arrange
from tests.support.factories.catalog import new_service
from tests.support.factories.clients import new_address, new_client
from tests.support.factories.identity import new_org
from tests.support.factories.scheduling import new_booking
from tests.support.smtp import SmtpServer

registry.import_jobs()


async def test_a_job_s_own_message_leaves_with_its_commit_without_a_sweep(
    owner_engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Fast Path Cleaning")
        client = await new_client(db, org.id, email="ada@example.com")
        address = await new_address(db, org.id, client.id)
        service = await new_service(db, org.id)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        booking = await new_booking(db, org.id, client.id, address.id, service.id, starts_at=start)
    env = test_env(**smtp_server.env())
    settings = load_settings(env)
    broker = build_broker(settings)
    rt = build_runtime(settings, application_name="test-worker-fast-path")
    relay = OutboxRelay(rt.sessionmaker, broker)
    install_relay(relay)  # this process commits like the API; the worker is the one under test
    worker = processes.start_worker(env, processes=1, threads=2)
    try:
        async with rt.session(org.id) as session:
            await session.execute(
                update(Booking).where(Booking.id == booking.id).values(status="confirmed", confirmed_at=start)
            )
            emit(session, BookingConfirmed(org_id=org.id, booking_id=booking.id))
        await relay.drain()
        [mail] = await smtp_server.wait_for(1, timeout=30)
        assert mail.rcpt_tos == ["ada@example.com"], worker.log()
    finally:
        worker.stop()
        install_relay(None)
        await relay.close()
        await rt.close()
        broker.close()
    async with owner_engine.connect() as conn:
        pending = await conn.scalar(
            text("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL AND actor_name = 'messaging.deliver'")
        )
    assert pending == 0  # marked sent by the worker's hand-over, not left for a sweep
