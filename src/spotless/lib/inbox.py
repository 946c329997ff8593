"""The inbox: what arrives from outside (Stripe, Google Calendar push, QuickBooks webhooks) is
stored once, answered at once, and processed by a job.

Senders deliver twice, out of order, and while we are down (they retry). So:

1. The endpoint verifies the event (signature on the raw body), then calls `receive` in the
   request's transaction: one `INSERT ... ON CONFLICT (source, external_id) DO NOTHING RETURNING id`
   and, only when that inserted a row, one outbox row for `system.process_inbox_event`. The unit of
   work commits before the answer is sent, so the sender hears 2xx only for an event we stored, and
   a rollback leaves neither the event nor its job. `acknowledge` is that call plus the 2xx answer.
2. `system.process_inbox_event(event_id)` locks the row (`FOR UPDATE SKIP LOCKED`: a concurrent
   delivery of the same job returns at once, the holder does the work), skips a handled event,
   calls the handler registered for its source and, in the same transaction, stamps `handled_at`.
   A handler that raises has its writes rolled back; the event keeps `attempts` and `last_error`
   and the error is raised again so Dramatiq retries it, then dead-letters it. It stays listed by
   `just inbox` and `just inbox replay` enqueues it again.

**The handler contract** (`@inbox_handler("stripe")` in the integration's `actors.py`):
- It gets the job's session (one transaction, no organisation bound) and a `ReceivedEvent`. Once it
  knows the organisation (Connect account, channel id, realm id → our connection row) it scopes the
  transaction with `spotless.db.engine.apply_org_now(session, org_id)` before touching tenant rows.
- Deliveries come in any order: where order matters it **re-reads the object from its source** (the
  Stripe PaymentIntent, the calendar's events with the stored sync token, the QuickBooks entity by
  id) and applies that current state, never the delivered snapshot; applying it twice is a no-op.
- Its database writes commit together with `handled_at`; what it does outside (API calls) may run
  again on a retry, so those calls carry idempotency keys. It holds the row lock and a transaction
  while it runs: outbound calls need timeouts well below the idle-in-transaction timeout (60 s).
- An event it cannot match (unknown account, an object we never created) is not an error: it logs
  and returns `"ignored"` (raising would retry it for days, and the sender is already answered).

Why a system table without `org_id`: at receipt nothing is authenticated, and the sender names
its own account (Stripe `account`, a Google channel, a QuickBooks realm), not our organisation;
mapping it needs the integration's tables (a lookup on the hot path of the answer), and an event we
cannot map must still be stored. The handler resolves the organisation and scopes its own writes.
The payload is JSONB (the verified event as the source defines it: Stripe's event object, Google's
push headers, QuickBooks' notification) so handlers read fields and operators can query it; the raw
bytes are only needed for the signature check, which happens before `receive`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

import msgspec
from litestar import Response
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from spotless.db.base import orm_registry
from spotless.lib.jobs import enqueue, job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.metrics import WEBHOOK_ERRORS, WEBHOOK_EVENTS

logger = logging.getLogger("spotless.inbox")

PROCESS_JOB = "system.process_inbox_event"
SOURCE_PATTERN = "^[a-z][a-z0-9_]{0,31}$"
MAX_ERROR_CHARS = 2000


@orm_registry.mapped
class InboxEvent:
    """One verified event from outside, stored once per (source, external id)."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_inbox_events_source_external_id"),
        CheckConstraint(f"source ~ '{SOURCE_PATTERN}'", name="source_format"),
        CheckConstraint("length(external_id) BETWEEN 1 AND 255", name="external_id_length"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # `just inbox` and replays read only what is not handled yet.
        Index("ix_inbox_events_unhandled", "received_at", postgresql_where=text("handled_at IS NULL")),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(128), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


# Core statements (ON CONFLICT, SKIP LOCKED, column updates) read the table itself.
_events: Table = InboxEvent.__table__  # type: ignore[attr-defined]


# --- handlers ----------------------------------------------------------------------------------

HandlerOutcome = Literal["processed", "ignored"]


@dataclass(frozen=True)
class ReceivedEvent:
    """What a handler gets: the stored event, never the ORM row."""

    id: UUID
    source: str
    external_id: str
    event_type: str | None
    payload: dict[str, Any]
    received_at: datetime
    attempt: int  # 1 on the first try


InboxHandler = Callable[[AsyncSession, ReceivedEvent], Awaitable[HandlerOutcome | None]]
HANDLERS: dict[str, InboxHandler] = {}


def inbox_handler(source: str) -> Callable[[InboxHandler], InboxHandler]:
    """Register the one handler of a source (see the module's contract)."""

    def decorate(fn: InboxHandler) -> InboxHandler:
        if source in HANDLERS and HANDLERS[source] is not fn:
            raise ValueError(f"inbox source {source!r} has a handler already")
        HANDLERS[source] = fn
        return fn

    return decorate


class NoInboxHandler(RuntimeError):
    pass


# --- receiving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    event_id: UUID | None  # None for a duplicate
    duplicate: bool


async def receive(
    session: AsyncSession,
    source: str,
    external_id: str,
    payload: Mapping[str, Any],
    *,
    event_type: str | None = None,
) -> Received:
    """Store a verified event once and enqueue its processing only if it is new. One round trip
    (the outbox row is flushed with the commit). Call it in the request's transaction."""
    statement = (
        pg_insert(_events)
        .values(
            id=uuid7(),
            source=source,
            external_id=external_id,
            event_type=event_type,
            payload=jsonb_safe(payload),
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(_events.c.id)
    )
    event_id: UUID | None = await session.scalar(statement)
    if event_id is None:
        logger.info("duplicate %s event %s ignored", source, external_id)
        return Received(event_id=None, duplicate=True)
    enqueue(session, PROCESS_JOB, str(event_id))
    return Received(event_id=event_id, duplicate=False)


def jsonb_safe(payload: Mapping[str, Any]) -> dict[str, Any]:
    """PostgreSQL's JSONB refuses U+0000 in strings, and a refused event would be answered with an
    error the sender retries for days. A NUL (in a customer-typed field, say) becomes U+FFFD; the
    signature was checked on the raw body already. The walk only runs when the encoding has one."""
    if b"\\u0000" not in msgspec.json.encode(payload):
        return dict(payload)
    return cast(dict[str, Any], _without_nul(dict(payload)))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class InboxAck(msgspec.Struct, frozen=True):
    received: bool
    duplicate: bool


async def acknowledge(
    session: AsyncSession,
    source: str,
    external_id: str,
    payload: Mapping[str, Any],
    *,
    event_type: str | None = None,
) -> Response[InboxAck]:
    """For a webhook handler, after verifying: store and answer 200. The unit of work commits before
    the answer leaves, so a failed commit becomes a 409/503 the sender retries, never a 2xx."""
    result = await receive(session, source, external_id, payload, event_type=event_type)
    return Response(InboxAck(received=True, duplicate=result.duplicate), status_code=200)


# --- processing --------------------------------------------------------------------------------

Outcome = Literal["processed", "ignored", "already_handled", "busy_or_missing"]


async def process(sessionmaker: async_sessionmaker[AsyncSession], event_id: UUID) -> Outcome:
    """Run the source's handler for one event at most once in effect (see the module's docstring)."""
    table = _events
    try:
        async with sessionmaker() as session, session.begin():
            row = (
                await session.execute(select(table).where(table.c.id == event_id).with_for_update(skip_locked=True))
            ).one_or_none()
            if row is None:
                # Locked by a concurrent delivery (it does the work, and retries if it fails) or gone.
                return "busy_or_missing"
            if row.handled_at is not None:
                return "already_handled"
            handler = HANDLERS.get(row.source)
            if handler is None:
                raise NoInboxHandler(f"no inbox handler registered for source {row.source!r}")
            event = ReceivedEvent(
                id=row.id,
                source=row.source,
                external_id=row.external_id,
                event_type=row.event_type,
                payload=row.payload,
                received_at=row.received_at,
                attempt=row.attempts + 1,
            )
            outcome: HandlerOutcome = (await handler(session, event)) or "processed"
            await session.execute(
                update(table)
                .where(table.c.id == event_id)
                .values(
                    handled_at=func.now(),
                    outcome=outcome,
                    attempts=table.c.attempts + 1,
                    last_attempt_at=func.now(),
                    last_error=None,
                )
            )
    except Exception as exc:
        # The handler's writes are rolled back with its transaction; the failure is recorded on
        # its own, then raised again so Dramatiq's retries (and finally its dead letters) apply.
        await _record_failure(sessionmaker, event_id, exc)
        WEBHOOK_EVENTS.labels(result="error").inc()
        WEBHOOK_ERRORS.inc()
        raise
    except asyncio.CancelledError:
        # Dramatiq's time limit (or a shutdown) cancels the coroutine: say so on the event, else it
        # would look untried. The transaction was rolled back as the cancellation unwound.
        await _record_failure(sessionmaker, event_id, TimeoutError("cancelled: time limit or shutdown"))
        WEBHOOK_ERRORS.inc()
        raise
    WEBHOOK_EVENTS.labels(result=outcome).inc()
    return outcome


async def _record_failure(sessionmaker: async_sessionmaker[AsyncSession], event_id: UUID, exc: Exception) -> None:
    table = _events
    message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(table)
                # A concurrent delivery may have handled it meanwhile: never mark a handled event failed.
                .where(table.c.id == event_id, table.c.handled_at.is_(None))
                .values(attempts=table.c.attempts + 1, last_attempt_at=func.now(), last_error=message)
            )
    except Exception:
        logger.exception("could not record the failure of inbox event %s", event_id)
    logger.warning("inbox event %s failed: %s", event_id, message)


# Retries spread over ~3.5 hours (5 s doubling to 1 h), then the dead letters; the event stays in
# the inbox, listed as failed, for `just inbox replay`. The age limit outlives the retries.
@job(
    PROCESS_JOB,
    max_retries=12,
    min_backoff_ms=5_000,
    max_backoff_ms=3_600_000,
    time_limit_ms=120_000,
    max_age_ms=3 * 24 * 3_600_000,
)
async def process_inbox_event(event_id: str) -> None:
    await process(get_runtime().sessionmaker, UUID(event_id))


# --- operating: `just inbox` -------------------------------------------------------------------


@dataclass(frozen=True)
class PendingEvent:
    """A listing line: never the payload itself (it may carry personal data or tokens), its size."""

    id: UUID
    source: str
    external_id: str
    event_type: str | None
    received_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    payload_bytes: int

    @property
    def status(self) -> str:
        return "failed" if self.last_error else "pending"


async def list_unhandled(session: AsyncSession, *, limit: int = 100, source: str | None = None) -> list[PendingEvent]:
    table = _events
    query = (
        select(
            table.c.id,
            table.c.source,
            table.c.external_id,
            table.c.event_type,
            table.c.received_at,
            table.c.attempts,
            table.c.last_attempt_at,
            table.c.last_error,
            func.octet_length(table.c.payload.cast(Text)).label("payload_bytes"),
        )
        .where(table.c.handled_at.is_(None))
        .order_by(table.c.received_at, table.c.id)
        .limit(limit)
    )
    if source is not None:
        query = query.where(table.c.source == source)
    return [PendingEvent(**row._mapping) for row in (await session.execute(query)).all()]


@dataclass(frozen=True)
class Replayed:
    event_ids: list[UUID]
    outbox_ids: list[UUID]
    not_pending: list[UUID]  # asked for, but handled already or unknown


async def replay(session: AsyncSession, event_ids: list[UUID] | None = None, *, limit: int = 1000) -> Replayed:
    """Enqueue processing again for the given unhandled events (all of them, oldest first, up to
    `limit`, when none are given). Harmless if a delivery is still on its way: the job skips
    handled events and concurrent ones skip each other."""
    table = _events
    query = select(table.c.id).where(table.c.handled_at.is_(None)).order_by(table.c.received_at, table.c.id)
    query = query.where(table.c.id.in_(event_ids)) if event_ids else query.limit(limit)
    found = list((await session.scalars(query)).all())
    outbox_ids = [enqueue(session, PROCESS_JOB, str(event_id)) for event_id in found]
    missing = [event_id for event_id in (event_ids or []) if event_id not in set(found)]
    return Replayed(event_ids=found, outbox_ids=outbox_ids, not_pending=missing)


__all__ = [
    "HANDLERS",
    "PROCESS_JOB",
    "HandlerOutcome",
    "InboxAck",
    "InboxEvent",
    "InboxHandler",
    "NoInboxHandler",
    "PendingEvent",
    "Received",
    "ReceivedEvent",
    "Replayed",
    "acknowledge",
    "inbox_handler",
    "jsonb_safe",
    "list_unhandled",
    "process",
    "process_inbox_event",
    "receive",
    "replay",
]
