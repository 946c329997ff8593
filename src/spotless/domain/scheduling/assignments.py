"""Who is busy when: the time an assignment holds, and the write that the database may refuse.

No double booking is the database's job (`ex_booking_assignment_no_overlap`): the constraint's
refusal becomes a 409 naming the booking it collided with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.db.unit_of_work import request_transaction, rollback
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking, BookingAssignment
from spotless.domain.scheduling.rules import SchedulingConflict
from spotless.lib.sql import Compiled

EXCLUSION_VIOLATION = "23P01"
# Longest booking, and the longest time an assignment holds (job + the largest travel buffer):
# lets worker-time queries bound their index range scans.
MAX_BOOKING_MINUTES = 24 * 60
MAX_HELD = timedelta(minutes=MAX_BOOKING_MINUTES + 240)


def busy_range(start: datetime, end: datetime, buffer: timedelta) -> Range[datetime]:
    """The time an assignment holds: the job, then the travel buffer before the next one."""
    return Range(start, end + buffer, bounds="[)")


def new_assignments(
    ctx: OrgContext, booking: Booking, worker_ids: Sequence[UUID], during: Range[datetime]
) -> list[BookingAssignment]:
    return [
        BookingAssignment(
            org_id=ctx.org_id,
            booking_id=booking.id,
            worker_id=w,
            starts_at=booking.starts_at,
            ends_at=booking.ends_at,
            during=during,
            active=True,
        )
        for w in worker_ids
    ]


# A new booking's assignments, one statement whatever the number of workers (lib.sql: compiled
# once, run through asyncpg); the exclusion constraint refuses a double booking here.
_INSERT_ASSIGNMENTS = Compiled(
    text(
        "INSERT INTO booking_assignment"
        " (id, org_id, booking_id, worker_id, starts_at, ends_at, during, active, created_at, updated_at)"
        " SELECT new.id, CAST(:org_id AS uuid), CAST(:booking_id AS uuid), new.worker_id,"
        " CAST(:starts_at AS timestamptz), CAST(:ends_at AS timestamptz), CAST(:during AS tstzrange), true,"
        " CAST(:now AS timestamptz), CAST(:now AS timestamptz)"
        " FROM unnest(CAST(:ids AS uuid[]), CAST(:worker_ids AS uuid[])) AS new(id, worker_id)"
    )
)


def insert_assignments(
    session: AsyncSession, ctx: OrgContext, booking: Booking, worker_ids: Sequence[UUID], during: Range[datetime]
) -> Callable[[], Awaitable[None]]:
    """The write `flush_assignments` runs for a new booking's workers."""

    async def write() -> None:
        await _INSERT_ASSIGNMENTS.execute(
            session,
            {
                "org_id": ctx.org_id,
                "booking_id": booking.id,
                "starts_at": booking.starts_at,
                "ends_at": booking.ends_at,
                "during": asyncpg.Range(during.lower, during.upper, lower_inc=True, upper_inc=False),
                "now": datetime.now(UTC),
                "ids": [uuid7() for _ in worker_ids],
                "worker_ids": list(worker_ids),
            },
        )

    return write


def flushed(session: AsyncSession, change: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """An ORM change (rows added or moved) as the write `flush_assignments` runs: applied, then flushed."""

    async def write() -> None:
        change()
        await session.flush()

    return write


async def find_conflict(
    session: AsyncSession, worker_ids: Sequence[UUID], during: Range[datetime], exclude_booking: UUID | None
) -> tuple[UUID | None, UUID | None]:
    stmt = (
        select(BookingAssignment.booking_id, BookingAssignment.worker_id)
        .where(
            BookingAssignment.worker_id.in_(list(worker_ids)),
            BookingAssignment.active,
            BookingAssignment.during.overlaps(during),
        )
        .order_by(BookingAssignment.starts_at)
        .limit(1)
    )
    if exclude_booking is not None:
        stmt = stmt.where(BookingAssignment.booking_id != exclude_booking)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else (None, None)


async def flush_assignments(
    session: AsyncSession,
    booking_id: UUID,
    worker_ids: Sequence[UUID],
    during: Range[datetime],
    write: Callable[[], Awaitable[None]],
) -> None:
    """Run `write` (new or moved assignment rows: `insert_assignments`, `flushed`); a refusal by the exclusion
    constraint becomes a 409 booking-conflict naming the booking it collided with (looked up after
    the refusal: Postgres only refuses once the other transaction has committed, so it is visible).

    A request's own transaction needs no savepoint: a conflict ends the request with the 409, so
    the refused statement may abort the transaction; it is rolled back at once, as the unit of work
    would (after-rollback hooks awaited), and the lookup runs in a fresh transaction of the same
    session and organisation. That saves SAVEPOINT and RELEASE on every booking written. A caller
    that goes on after a conflict (inside a savepoint of its own: a series books its other dates)
    or that manages its transaction itself (jobs, tests) keeps the savepoint."""
    if not request_transaction(session):
        await session.flush()  # everything else first: opening a savepoint flushes pending changes outside it
        try:
            async with session.begin_nested():
                await write()
        except sa_exc.IntegrityError as exc:
            _reraise_unless_exclusion(exc)
            raise await _conflict(session, worker_ids, during, booking_id) from None
        return
    try:
        await write()
    except sa_exc.IntegrityError as exc:
        _reraise_unless_exclusion(exc)
        await rollback(session)
        raise await _conflict(session, worker_ids, during, booking_id) from None


def _reraise_unless_exclusion(exc: sa_exc.IntegrityError) -> None:
    if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
        raise exc


async def _conflict(
    session: AsyncSession, worker_ids: Sequence[UUID], during: Range[datetime], booking_id: UUID
) -> SchedulingConflict:
    other, worker = await find_conflict(session, worker_ids, during, booking_id)
    return SchedulingConflict(
        "booking-conflict",
        "The worker already has a booking at that time (travel buffer included).",
        worker_id=worker,
        conflicting_booking_id=other,
    )
