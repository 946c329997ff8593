"""A worker killed mid-job (SIGKILL: out of memory, a lost node) gives its in-flight messages back
within 30 s, and their effects still happen once.

The job is the real `identity.purge_expired`, run for twelve distinct slots: its claim
(`scheduled_runs`) commits with its work, so a run killed before its commit leaves nothing and its
redelivery really runs. To catch the worker mid-job, the test holds the slots' rows in an open
transaction: the worker's runs wait on them, as a slow query would."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.lib.jobs import enqueue
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay
from spotless.settings import Settings
from tests.conftest import test_env as child_env
from tests.support import processes
from tests.support.factories import new_scheduled_run

registry.import_jobs()

JOB = "identity.purge_expired"
# Far from today: the scheduler's own housekeeping (old slots) and runs (this hour) leave them be.
SLOTS = [datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(12)]
THREADS = 4  # Dramatiq prefetches 2 per thread: the worker holds 8 of the 12 messages


def _process_tree(pid: int) -> list[int]:
    """The dramatiq supervisor and its forked worker processes."""
    children: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *[p for child in children for p in _process_tree(child)]]


async def _held_messages(redis: Redis, settings: Settings) -> int:
    keys = await redis.keys(f"{settings.jobs.namespace}:__acks__.*")
    return sum([int(await redis.scard(key)) for key in keys])


async def _waiting_runs(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(
            await conn.scalar(
                # Raw SQL: the worker's own statement text, as the server shows it, is what is matched.
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'INSERT INTO scheduled_runs%' AND datname = current_database()"
                )
            )
        )


async def _done(owner_engine: AsyncEngine) -> list[tuple[datetime, str, int]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT slot, status, attempts FROM scheduled_runs WHERE job_name = :job AND slot >= '2030-01-01' AND slot < '2031-01-01'"
            ),
            {"job": JOB},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return False


async def test_a_killed_workers_messages_run_again_within_30s_and_once(
    settings: Settings, owner_engine: AsyncEngine, redis: Redis
) -> None:
    env = child_env()
    engine = create_engine(settings.database, application_name="test-worker-crash")
    broker = build_broker(settings)
    blocker = await owner_engine.connect()
    worker = scheduler = replacement = None
    try:
        # The slots' rows, uncommitted: every run of the job waits on its row's lock.
        blocking = await blocker.begin()
        # A session on that open transaction: closing it leaves the transaction (and the locks) be.
        async with AsyncSession(bind=blocker) as db:
            for slot in SLOTS:
                await new_scheduled_run(db, JOB, slot, status="started")
        sessionmaker = session_factory(engine)
        async with sessionmaker() as session, session.begin():
            for slot in SLOTS:
                enqueue(session, JOB, slot=slot.isoformat())
        assert await OutboxRelay(sessionmaker, broker).relay() == len(SLOTS)

        worker = processes.start_worker(env, threads=THREADS)
        mid_job = await _until(
            lambda: _all_busy(owner_engine, redis, settings),
            timeout=60,
        )
        assert mid_job, worker.log()

        for pid in reversed(_process_tree(worker.popen.pid)):
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        worker.popen.wait(10)
        await blocking.rollback()  # the dead worker's runs proceed, but their client is gone: no commit

        replacement = processes.start_worker(env, threads=THREADS)
        scheduler = processes.start_scheduler(env)

        async def all_done() -> bool:
            rows = await _done(owner_engine)
            return len(rows) == len(SLOTS) and all(status == "done" for _, status, _ in rows)

        finished = await _until(all_done, timeout=45)
        recovery = time.monotonic() - killed_at
        assert finished, replacement.log()[-3000:] + scheduler.log()[-3000:]
        assert recovery < 30, f"the killed worker's messages took {recovery:.1f}s to complete"
        print(f"\nall {len(SLOTS)} messages done {recovery:.1f}s after the SIGKILL")

        # Each slot's work committed once: one row per slot, claimed by one attempt.
        rows = await _done(owner_engine)
        assert sorted(slot for slot, _, _ in rows) == SLOTS
        assert {attempts for _, _, attempts in rows} == {1}
        # Nothing is left held or queued, and the dead worker is forgotten.
        assert await _until(lambda: _queue_empty(redis, settings), timeout=10)
    finally:
        for proc in (scheduler, replacement, worker):
            if proc is not None:
                proc.stop()
        await blocker.close()
        broker.close()
        await engine.dispose()


async def _all_busy(owner_engine: AsyncEngine, redis: Redis, settings: Settings) -> bool:
    return await _waiting_runs(owner_engine) >= THREADS and await _held_messages(redis, settings) >= 2 * THREADS


async def _queue_empty(redis: Redis, settings: Settings) -> bool:
    ns = settings.jobs.namespace
    return int(await redis.llen(f"{ns}:default")) == 0 and int(await redis.hlen(f"{ns}:default.msgs")) == 0
