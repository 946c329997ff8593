"""Durable enqueue: a job is a row written in the caller's transaction, handed to the broker only
after the outermost transaction commits (a savepoint rolled back elsewhere in it keeps it). A
rollback discards it; Redis being down at commit time only delays it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import DateTime, Index, Integer, String, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column
from uuid_utils.compat import uuid7

from spotless.db.base import UUIDv7AuditBase
from spotless.db.unit_of_work import collect_after_commit
from spotless.lib.jobs.registry import get_job
from spotless.lib.metrics import OUTBOX_PENDING, OUTBOX_RELAY_ERRORS, OUTBOX_RELAYED

logger = logging.getLogger("spotless.jobs.outbox")


class JobOutbox(UUIDv7AuditBase):
    """System table (no org_id): jobs carry the ids they need, including the organisation's."""

    __tablename__ = "job_outbox"
    __table_args__ = (Index("ix_job_outbox_pending", "available_at", postgresql_where=text("sent_at IS NULL")),)

    actor_name: Mapped[str] = mapped_column(String(128))
    queue_name: Mapped[str] = mapped_column(String(64))
    args: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


def enqueue(session: AsyncSession | Session, job_name: str, *args: Any, **kwargs: Any) -> uuid.UUID:
    """Record a job in the current transaction. Arguments must be JSON (ids, not ORM objects)."""
    spec = get_job(job_name)
    row = JobOutbox(
        id=uuid7(),
        actor_name=spec.name,
        queue_name=spec.queue,
        args=list(args),
        kwargs=kwargs,
        attempts=0,
    )
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    sync_session.add(row)
    collect_after_commit(sync_session, _deliver_after_commit, row.id)
    return row.id


class OutboxRelay:
    """Hands committed rows to the broker. `kick` is the fast path right after a commit; `sweep`
    (run by the scheduler process) picks up whatever the fast path could not deliver."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], broker: RedisBroker) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self._tasks: set[asyncio.Task[Any]] = set()

    def kick(self, ids: list[uuid.UUID]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (sync caller): the sweep delivers it
        task = loop.create_task(self.relay(ids=ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for fast-path deliveries in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def relay(self, ids: list[uuid.UUID] | None = None, limit: int = 200) -> int:
        """Deliver due rows; concurrent relays skip each other's rows. Returns rows delivered."""
        try:
            async with self.sessionmaker() as session, session.begin():
                query = (
                    select(JobOutbox)
                    .where(JobOutbox.sent_at.is_(None), JobOutbox.available_at <= func.now())
                    .order_by(JobOutbox.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                if ids is not None:
                    query = query.where(JobOutbox.id.in_(ids))
                rows = list((await session.scalars(query)).all())
                if not rows:
                    return 0
                delivered = await asyncio.to_thread(self._send, rows)
                now = datetime.now(UTC)
                for row in rows[:delivered]:
                    row.sent_at = now
                if delivered < len(rows):
                    failed = rows[delivered]
                    failed.attempts += 1
                    backoff = min(2 ** min(failed.attempts, 8), 300)
                    for row in rows[delivered:]:
                        row.available_at = now + timedelta(seconds=backoff)
                OUTBOX_RELAYED.inc(delivered)
                return delivered
        except Exception:
            OUTBOX_RELAY_ERRORS.inc()
            logger.warning("outbox relay failed; rows stay pending", exc_info=True)
            return 0

    def _send(self, rows: list[JobOutbox]) -> int:
        sent = 0
        for row in rows:
            message: Message[Any] = Message(
                queue_name=row.queue_name,
                actor_name=row.actor_name,
                args=tuple(row.args),
                kwargs=row.kwargs,
                options={},
                message_id=str(row.id),
            )
            try:
                self.broker.enqueue(message)
            except Exception as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                OUTBOX_RELAY_ERRORS.inc()
                logger.warning("broker unavailable; job %s stays in the outbox", row.actor_name)
                return sent
            sent += 1
        return sent

    async def sweep_forever(self, interval_seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delivered = await self.relay()
            if delivered:
                continue  # more may be waiting
            await refresh_pending_gauge(self.sessionmaker)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


async def refresh_pending_gauge(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    try:
        async with sessionmaker() as session:
            pending = await session.scalar(text("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL"))
        OUTBOX_PENDING.set(pending or 0)
    except Exception:
        logger.debug("could not count pending outbox rows", exc_info=True)


async def purge_sent(session: AsyncSession, older_than: timedelta = timedelta(days=3)) -> int:
    result = await session.execute(
        text("DELETE FROM job_outbox WHERE sent_at IS NOT NULL AND sent_at < :cutoff"),
        {"cutoff": datetime.now(UTC) - older_than},
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


_relay: OutboxRelay | None = None


def install_relay(relay: OutboxRelay | None) -> None:
    """The API process installs its relay so commits deliver at once."""
    global _relay
    _relay = relay


def current_relay() -> OutboxRelay | None:
    return _relay


def _deliver_after_commit(ids: list[uuid.UUID]) -> None:
    if _relay is not None:
        _relay.kick(ids)
