"""Durable enqueue: a job is a row written in the caller's transaction, handed to the broker only
after the outermost transaction commits (a savepoint rolled back elsewhere in it keeps it). A
rollback discards it; Redis being down at commit time only delays it.

The fast path (a process with a relay installed: the API) knows each committed job already: the
commit hook queues the messages in memory, one long-lived delivery task per process sends them
and marks their rows sent afterwards, batched (one UPDATE for everything sent meanwhile). Nothing
is read back, and no task or connection is taken per commit. Rows written under a fast path are
due for the sweep only `FAST_PATH_GRACE` later, so the sweep never races it; if the process dies
between commit and send (or between send and mark), the sweep delivers them then (a redelivery
in the second case: delivery is at least once, jobs are idempotent)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import DateTime, Index, Integer, String, Text, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column
from uuid_utils.compat import uuid7

from spotless.db.base import UUIDv7AuditBase
from spotless.db.unit_of_work import collect_after_commit, write_before_commit
from spotless.lib.jobs.registry import get_job
from spotless.lib.metrics import OUTBOX_PENDING, OUTBOX_RELAY_ERRORS, OUTBOX_RELAYED
from spotless.lib.sql import Compiled

logger = logging.getLogger("spotless.jobs.outbox")

# How long the sweep leaves a fast-path row to its process before delivering it itself.
FAST_PATH_GRACE = timedelta(seconds=10)
# Sent rows are marked once this many wait, or when no message came for MARK_DELAY_SECONDS.
MARK_BATCH = 500
MARK_DELAY_SECONDS = 0.05
MARK_MAX_AGE_SECONDS = 1.0
# Beyond this many messages waiting in memory (a hung Redis) new ones are left to the sweep.
MAX_IN_MEMORY = 10_000


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
    row = JobOutbox(id=uuid7(), actor_name=spec.name, queue_name=spec.queue, args=list(args), kwargs=kwargs, attempts=0)
    if _relay is not None:
        # This process delivers it right after commit; the sweep only once the grace has passed.
        row.available_at = datetime.now(UTC) + FAST_PATH_GRACE
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    sync_session.add(row)
    collect_after_commit(sync_session, _deliver_after_commit, _Known(row.id, spec.name, spec.queue, args, kwargs))
    return row.id


# A transaction's new jobs in one statement (lib.sql: compiled once, run through asyncpg).
_INSERT_PENDING = Compiled(
    text(
        "INSERT INTO job_outbox"
        " (id, actor_name, queue_name, args, kwargs, available_at, attempts, created_at, updated_at)"
        " SELECT j.id, j.actor_name, j.queue_name, j.args, j.kwargs, COALESCE(j.available_at, now()), 0,"
        " now(), now()"
        " FROM unnest(CAST(:ids AS uuid[]), CAST(:actors AS varchar[]), CAST(:queues AS varchar[]),"
        " CAST(:args AS jsonb[]), CAST(:kwargs AS jsonb[]), CAST(:available AS timestamptz[]))"
        " AS j(id, actor_name, queue_name, args, kwargs, available_at)"
    )
)


@write_before_commit
async def write_pending(session: AsyncSession) -> None:
    """At the request's commit: the transaction's new outbox rows in one INSERT, taken out of the
    session first so the commit's flush does not write them again (a flush of each row was ~8 % of a
    booking write). Rows of a savepoint that rolled back left the session with it already."""
    sync = session.sync_session
    rows = [obj for obj in sync.new if isinstance(obj, JobOutbox)]
    if not rows:
        return
    for row in rows:
        sync.expunge(row)
    encode = msgspec.json.encode
    await _INSERT_PENDING.execute(
        session,
        {
            "ids": [row.id for row in rows],
            "actors": [row.actor_name for row in rows],
            "queues": [row.queue_name for row in rows],
            "args": [encode(row.args).decode() for row in rows],
            "kwargs": [encode(row.kwargs).decode() for row in rows],
            "available": [row.available_at for row in rows],
        },
    )


class _Known(collections.namedtuple("_Known", "id actor_name queue_name args kwargs")):
    """A committed job as its transaction wrote it: what the broker needs, without reading it back."""

    def message(self) -> Message[Any]:
        return Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=tuple(self.args),
            kwargs=self.kwargs,
            options={},
            message_id=str(self.id),
        )


class OutboxRelay:
    """Hands committed rows to the broker. `hand_over` is the fast path right after a commit (the
    messages are known; no read); `relay`/`sweep` (the scheduler runs the sweep) pick up whatever
    the fast path could not deliver."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], broker: RedisBroker) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self._waiting: collections.deque[_Known] = collections.deque()
        self._sent: list[uuid.UUID] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None

    def hand_over(self, jobs: list[_Known]) -> None:
        """Queue committed jobs for the delivery task (started on first use in this loop). Cheap and
        synchronous: it runs inside the commit."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (sync caller): the sweep delivers them after the grace
        if len(self._waiting) + len(jobs) > MAX_IN_MEMORY:
            logger.warning("outbox fast path is backed up; %d job(s) left to the sweep", len(jobs))
            return
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._deliver_forever(), name="outbox-fast-path")
        self._waiting.extend(jobs)
        self._idle.clear()  # type: ignore[union-attr]
        self._wake.set()  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until everything handed over is sent (or given up) and marked, then stop the
        delivery task (shutdown, tests); the next hand-over starts it again."""
        while True:
            task, idle, wake = self._task, self._idle, self._wake
            if task is None or task.done() or idle is None or wake is None:
                return
            if self._loop is not asyncio.get_running_loop():
                return
            wake.set()  # mark what was sent now, without waiting for the burst to end
            await idle.wait()
            if idle.is_set() and not self._waiting and not self._sent:
                self._task = None  # a hand-over from now on starts a new task
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return

    async def close(self) -> None:
        """Deliver what is queued, then stop (the process is shutting down)."""
        await self.drain()

    async def _deliver_forever(self) -> None:
        loop = asyncio.get_running_loop()
        wake, idle = self._wake, self._idle
        assert wake is not None and idle is not None
        first_sent = 0.0
        while True:
            if not self._waiting:
                wake.clear()  # set by hand-overs whose jobs went out already
                if not self._sent:
                    idle.set()
                    await wake.wait()
                    continue
                # Sent but not marked: mark once the burst is over (no new job for a moment), or
                # at once when a drain asks (it sets `wake` with nothing waiting).
                timer = loop.call_later(MARK_DELAY_SECONDS, wake.set)
                await wake.wait()
                timer.cancel()
                if not self._waiting:
                    await self._mark_sent()
                continue
            batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), MARK_BATCH))]
            try:
                sent = await asyncio.to_thread(self._send_known, batch)
            except Exception:
                logger.exception("outbox fast path failed; the sweep delivers the jobs")
                continue
            if sent and not self._sent:
                first_sent = loop.time()
            self._sent.extend(job.id for job in batch[:sent])
            OUTBOX_RELAYED.inc(sent)
            if sent < len(batch):
                # The broker refused: the rest of this batch, and what waits behind it, go to the sweep.
                unsent = [job.id for job in batch[sent:]] + [job.id for job in self._waiting]
                self._waiting.clear()
                await self._mark_failed(unsent, batch[sent])
            # A steady stream never pauses: mark at least every MARK_MAX_AGE_SECONDS, well within
            # the grace after which the sweep would send these again.
            if len(self._sent) >= MARK_BATCH or (self._sent and loop.time() - first_sent >= MARK_MAX_AGE_SECONDS):
                await self._mark_sent()

    def _send_known(self, batch: list[_Known]) -> int:
        for sent, known in enumerate(batch):
            try:
                self.broker.enqueue(known.message())
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"[:2000]
                OUTBOX_RELAY_ERRORS.inc()
                logger.warning("broker unavailable; job %s stays in the outbox", known.actor_name)
                return sent
        return len(batch)

    async def _mark_sent(self) -> None:
        ids, self._sent = self._sent, []
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(JobOutbox)
                    .where(JobOutbox.id.in_(ids), JobOutbox.sent_at.is_(None))
                    .values(sent_at=func.now())
                    .execution_options(synchronize_session=False)
                )
        except Exception:
            # They were delivered: the sweep sends them again after the grace (at least once).
            OUTBOX_RELAY_ERRORS.inc()
            logger.warning("could not mark %d delivered job(s) sent", len(ids), exc_info=True)

    async def _mark_failed(self, ids: list[uuid.UUID], failed: _Known) -> None:
        """Record the failed hand-over (as the sweep would) and make the rows due after a backoff."""
        error = self._last_error
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(JobOutbox)
                    .where(JobOutbox.id == failed.id)
                    .values(attempts=JobOutbox.attempts + 1, last_error=error)
                    .execution_options(synchronize_session=False)
                )
                await session.execute(
                    update(JobOutbox)
                    .where(JobOutbox.id.in_(ids), JobOutbox.sent_at.is_(None))
                    .values(available_at=func.now() + timedelta(seconds=2))
                    .execution_options(synchronize_session=False)
                )
        except Exception:
            logger.warning("could not record the failed hand-over; the sweep takes the jobs after the grace")

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


_relay: OutboxRelay | None = None


def install_relay(relay: OutboxRelay | None) -> None:
    """The API process installs its relay so commits deliver at once."""
    global _relay
    _relay = relay


def current_relay() -> OutboxRelay | None:
    return _relay


def _deliver_after_commit(jobs: list[_Known]) -> None:
    if _relay is not None:
        _relay.hand_over(jobs)
