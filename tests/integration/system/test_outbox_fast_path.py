"""The outbox fast path after a commit: the committed jobs are handed to the broker as the
transaction wrote them (no read back), their rows marked sent in batches, and the sweep leaves
them to the fast path, so each job reaches the broker once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.lib.jobs import enqueue, outbox
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.settings import Settings

registry.import_jobs()


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[Any, list[str]]]:
    """A sessionmaker whose every statement is recorded."""
    engine = create_engine(settings.database, application_name="test-outbox-fast-path")
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    yield session_factory(engine), statements
    await engine.dispose()


def _outbox_statements(statements: list[str], verb: str) -> list[str]:
    return [s for s in statements if s.startswith(verb) and "job_outbox" in s]


async def _queued(redis: Redis, settings: Settings) -> int:
    return int(await redis.hlen(f"{settings.jobs.namespace}:default.msgs"))


async def test_commits_hand_their_jobs_over_without_reading_them_back_and_mark_them_in_batches(
    settings: Settings, counted: tuple[Any, list[str]], owner_engine: AsyncEngine, redis: Redis, monkeypatch: Any
) -> None:
    sessionmaker, statements = counted
    monkeypatch.setattr(outbox, "MARK_DELAY_SECONDS", 0.5)  # a burst of commits is one batch
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        ids = []
        for i in range(20):
            async with sessionmaker() as session, session.begin():
                ids.append(enqueue(session, "system.noop", f"fast-{i}"))
        await relay.drain()
    finally:
        await relay.close()
        install_relay(None)
        broker.close()
    assert _outbox_statements(statements, "SELECT") == []  # nothing read back
    assert 1 <= len(_outbox_statements(statements, "UPDATE")) <= 3  # 20 commits, marked in batches
    assert await _queued(redis, settings) == 20
    async with owner_engine.connect() as conn:
        unsent = await conn.scalar(
            text("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL AND id = ANY(:ids)"), {"ids": ids}
        )
    assert unsent == 0


async def test_the_sweep_leaves_a_fast_path_job_to_its_process_so_it_is_sent_once(
    settings: Settings, counted: tuple[Any, list[str]], redis: Redis
) -> None:
    sessionmaker, _ = counted
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        async with sessionmaker() as session, session.begin():
            enqueue(session, "system.noop", "once")
        # The scheduler's sweep runs right after the commit, before the fast path marked the row.
        assert await OutboxRelay(sessionmaker, broker).relay() == 0
        await relay.drain()
        assert await OutboxRelay(sessionmaker, broker).relay() == 0
    finally:
        await relay.close()
        install_relay(None)
        broker.close()
    assert await _queued(redis, settings) == 1


async def test_a_job_committed_without_a_fast_path_is_the_sweeps_at_once(
    settings: Settings, counted: tuple[Any, list[str]], redis: Redis
) -> None:
    """A worker's or a script's commit (no relay installed) is delivered by the next sweep."""
    sessionmaker, _ = counted
    async with sessionmaker() as session, session.begin():
        job_id = enqueue(session, "system.noop", "swept")
    broker = build_broker(settings)
    try:
        assert await OutboxRelay(sessionmaker, broker).relay() == 1
    finally:
        broker.close()
    assert isinstance(job_id, uuid.UUID)
    assert await _queued(redis, settings) == 1
