"""Messaging: messages per second through one worker process, and the time from a booking's
confirmation commit to its email reaching the SMTP server (issue 13: p50 <= 1 s).

A real aiosmtpd server on loopback (in this process), one Dramatiq worker process (8 threads: the
delivery jobs a subscriber requests inside it leave with that job's commit) and the scheduler. `just bench messaging`; knobs BENCH_MESSAGING_MESSAGES (500) and
BENCH_MESSAGING_ROUNDS (30), scaled by --scale."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tests.support import processes
from tests.support.factories import arrange
from tests.support.factories.catalog import new_service
from tests.support.factories.clients import new_address, new_client
from tests.support.factories.identity import new_org
from tests.support.factories.scheduling import new_booking
from tests.support.smtp import SmtpServer

from scripts.bench.common import Result, env_int
from spotless.domain import registry
from spotless.domain.messaging.public import Recipient, request_message
from spotless.domain.scheduling.events import BookingConfirmed
from spotless.domain.scheduling.models import Booking
from spotless.lib.events import emit
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.jobs.runtime import JobRuntime, build_runtime
from spotless.settings import load_settings

TITLE = "Messaging — messages/s through one worker process; booking confirmed -> email at the SMTP server"


# Seeds as the cluster admin (RLS is forced on the tables' owner too): the bench database's URL.
ADMIN_URL: dict[str, str] = {}


async def _seed(rt: JobRuntime, bookings: int) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """An organisation, a client with an email and `bookings` pending visits (no cleaner)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    owner = create_async_engine(ADMIN_URL.get("url") or rt.settings.database.migration_url)
    try:
        return await _seed_as(owner, start, bookings)
    finally:
        await owner.dispose()


async def _seed_as(owner: AsyncEngine, start: datetime, bookings: int) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    async with arrange(owner) as db:
        org = await new_org(db, name="Bench Cleaning")
        client = await new_client(db, org.id, email=f"bench-{uuid.uuid4().hex[:8]}@example.com")
        address = await new_address(db, org.id, client.id)
        service = await new_service(db, org.id)
        ids = [
            (await new_booking(db, org.id, client.id, address.id, service.id, starts_at=start + timedelta(hours=i))).id
            for i in range(bookings)
        ]
    return org.id, client.id, ids


async def _wait_for(smtp: SmtpServer, count: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while len(smtp.messages) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def throughput(rt: JobRuntime, smtp: SmtpServer, total: int) -> Result:
    """`total` confirmations requested in one commit, drained by the worker to the SMTP server.
    Throughput: messages over the time from the commit to the last one's arrival; the
    percentiles: each message's own time from that commit to its arrival (the queue's wait
    included, so p99 is roughly the drain time)."""
    org_id, client_id, ids = await _seed(rt, total)
    async with rt.session(org_id) as session:
        await session.execute(update_status(ids))
    before = len(smtp.messages)
    async with rt.session(org_id) as session:
        for booking_id in ids:
            await request_message(
                session,
                org_id=org_id,
                kind="booking.confirmed",
                recipient=Recipient(kind="client", id=client_id),
                subject_type="booking",
                subject_id=booking_id,
                send_key="confirmed",
                params={"booking_id": str(booking_id)},
            )
    committed = time.perf_counter()
    done = await _wait_for(smtp, before + total, seconds=max(60.0, total * 0.5))
    arrived = [m.received_at for m in smtp.messages[before:]]
    got = len(arrived)
    elapsed = (max(arrived) - committed) if arrived else time.perf_counter() - committed
    return Result(
        "messages through one worker process (8 threads) to SMTP",
        got,
        elapsed,
        [(t - committed) * 1000 for t in arrived],
        errors=0 if done else total - got,
        note=f"one commit of {total} booking.confirmed requests; each: lock, context, render, send, record"
        "; ms = commit -> that message at the SMTP server (its wait in the queue included)",
    )


def update_status(ids: list[uuid.UUID]) -> Any:
    return update(Booking).where(Booking.id.in_(ids)).values(status="confirmed", confirmed_at=datetime.now(UTC))


async def confirmation_latency(rt: JobRuntime, smtp: SmtpServer, rounds: int) -> Result:
    """Each round: one commit confirms a booking (status + BookingConfirmed, as the API's confirm
    does), timed until its email is at the SMTP server (event -> subscriber -> delivery)."""
    org_id, _, ids = await _seed(rt, rounds + 3)
    latencies: list[float] = []
    lost = 0
    for i, booking_id in enumerate(ids):
        before = len(smtp.messages)
        async with rt.session(org_id) as session:
            await session.execute(update_status([booking_id]))
            emit(session, BookingConfirmed(org_id=org_id, booking_id=booking_id))
        committed = time.perf_counter()
        if not await _wait_for(smtp, before + 1, seconds=30.0):
            lost += 1
            continue
        if i >= 3:  # warm-up rounds
            latencies.append((time.perf_counter() - committed) * 1000)
        await asyncio.sleep(0.05)
    return Result(
        "booking confirmed (commit) -> email at the SMTP server",
        len(latencies),
        sum(latencies) / 1000,
        latencies,
        errors=lost,
        note="sequential; worker idle between rounds; target p50 <= 1000 ms",
    )


async def run(
    env: dict[str, str],
    scale: float = 1.0,
    messages: int | None = None,
    rounds: int | None = None,
    admin_url: str | None = None,
) -> list[Result]:
    """`admin_url`: where to seed (default: the database URL, a superuser's in `just bench`)."""
    if admin_url:
        ADMIN_URL["url"] = admin_url
    messages = messages or max(10, int(env_int("BENCH_MESSAGING_MESSAGES", 500) * scale))
    rounds = rounds or max(5, int(env_int("BENCH_MESSAGING_ROUNDS", 30) * scale))
    smtp = SmtpServer()
    smtp.controller.start()
    env = {**env, **smtp.env(), "JOB_TICK_INTERVAL_SECONDS": env.get("JOB_TICK_INTERVAL_SECONDS", "1")}
    settings = load_settings(env)
    registry.import_jobs()
    broker = build_broker(settings)
    rt = build_runtime(settings, application_name="bench-messaging")
    relay = OutboxRelay(rt.sessionmaker, broker)
    install_relay(relay)  # this process commits like the API: its jobs are handed over at once
    worker = processes.start_worker(env, processes=1, threads=8)
    scheduler = processes.start_scheduler(env)
    try:
        results = [await throughput(rt, smtp, messages), await confirmation_latency(rt, smtp, rounds)]
    finally:
        scheduler.stop()
        worker.stop()
        install_relay(None)
        await relay.close()
        await rt.close()
        broker.close()
        smtp.controller.stop()
    return results
