"""Cleaners in the field: their day's jobs and the time they spend on each.

"On my way" (`travel`) is stored once on the booking and announced to the client's messages.

Each worker's progress on a booking is a sequence of time entries (start/resume opens one,
pause/finish closes it) plus `finished_at` on their assignment. Actions lock the booking row, so
a double-tapped start cannot open two entries (the partial unique index `uq_time_entry_open` is
the backstop). The booking moves to in_progress on the first start and to completed when every
assigned worker has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import addresses_by_client
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.bookings import worker_id_for
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.events import BookingTravelStarted
from spotless.domain.scheduling.models import Booking, BookingAssignment, TimeEntry
from spotless.domain.scheduling.schemas import FieldAction, FieldAddress, TimeEntryRead, WorkerJobRead
from spotless.domain.scheduling.status import set_status
from spotless.lib.errors import Problem, not_found
from spotless.lib.events import emit
from spotless.lib.query import get_or_404


def no_worker_profile() -> Problem:
    return Problem(
        403,
        "no-worker-profile",
        "You have no worker profile",
        "Your login is not linked to a worker profile in this organisation.",
    )


async def _own_worker(session: AsyncSession, principal: Principal) -> UUID:
    worker_id = await worker_id_for(session, principal)
    if worker_id is None:
        raise no_worker_profile()
    return worker_id


def _worked(entries: Sequence[TimeEntry], now: datetime) -> timedelta:
    return sum(((e.ended_at or now) - e.started_at for e in entries), timedelta(0))


def _state(assignment: BookingAssignment, entries: Sequence[TimeEntry]) -> str:
    if assignment.finished_at is not None:
        return "finished"
    if not entries:
        return "not_started"
    return "working" if any(e.ended_at is None for e in entries) else "paused"


def _job(
    ctx: OrgContext,
    booking: Booking,
    assignment: BookingAssignment,
    entries: Sequence[TimeEntry],
    address: FieldAddress | None,
    now: datetime,
) -> WorkerJobRead:
    return WorkerJobRead(
        booking_id=booking.id,
        status=booking.status,
        starts_at=timeutil.local(booking.starts_at, ctx.tz),
        ends_at=timeutil.local(booking.ends_at, ctx.tz),
        planned_minutes=booking.estimated_minutes,
        worked_minutes=int(_worked(entries, now).total_seconds() // 60),
        state=_state(assignment, entries),
        client_id=booking.client_id,
        service_id=booking.service_id,
        address=address,
        notes=booking.notes,
        entries=[TimeEntryRead.from_model(e, ctx.tz) for e in entries],
        travel_started_at=timeutil.local(booking.travel_started_at, ctx.tz) if booking.travel_started_at else None,
    )


async def _entries(session: AsyncSession, assignment_ids: Sequence[UUID]) -> dict[UUID, list[TimeEntry]]:
    out: dict[UUID, list[TimeEntry]] = {a: [] for a in assignment_ids}
    if assignment_ids:
        for entry in await session.scalars(
            select(TimeEntry)
            .where(TimeEntry.assignment_id.in_(list(assignment_ids)))
            .order_by(TimeEntry.started_at, TimeEntry.id)
        ):
            out[entry.assignment_id].append(entry)
    return out


async def _addresses(session: AsyncSession, bookings: Sequence[Booking]) -> dict[UUID, FieldAddress]:
    by_client = await addresses_by_client(session, list({b.client_id for b in bookings}))
    out: dict[UUID, FieldAddress] = {}
    for addresses in by_client.values():
        for a in addresses:
            out[a.id] = FieldAddress(
                line1=a.line1,
                line2=a.line2,
                city=a.city,
                region=a.region,
                postal_code=a.postal_code,
                country=a.country,
                notes=a.notes,
            )
    return out


async def jobs_on(session: AsyncSession, principal: Principal, ctx: OrgContext, day: date) -> list[WorkerJobRead]:
    """The caller's assignments starting on local day `day`, in time order (cancelled ones and
    those on payment hold hidden)."""
    worker_id = await _own_worker(session, principal)
    start, end = timeutil.days_range_utc(day, day, ctx.tz)
    rows = list(
        await session.execute(
            select(Booking, BookingAssignment)
            .join(BookingAssignment, BookingAssignment.booking_id == Booking.id)
            .where(
                BookingAssignment.org_id == ctx.org_id,
                BookingAssignment.worker_id == worker_id,
                BookingAssignment.starts_at >= start,
                BookingAssignment.starts_at < end,
                Booking.status != "cancelled",
                Booking.payment_hold.is_(False),  # the client owes money: nobody is sent
            )
            .order_by(BookingAssignment.starts_at, Booking.id)
        )
    )
    entries = await _entries(session, [a.id for _, a in rows])
    addresses = await _addresses(session, [b for b, _ in rows]) if rows else {}
    now = datetime.now(UTC)
    return [_job(ctx, b, a, entries[a.id], addresses.get(b.address_id), now) for b, a in rows]


async def _locked(
    session: AsyncSession, principal: Principal, booking_id: UUID
) -> tuple[Booking, BookingAssignment, list[TimeEntry]]:
    booking = await get_or_404(session, Booking, booking_id, "job", with_for_update=True)
    worker_id = await _own_worker(session, principal)
    assignment = await session.scalar(
        select(BookingAssignment).where(
            BookingAssignment.booking_id == booking_id, BookingAssignment.worker_id == worker_id
        )
    )
    if assignment is None:
        raise not_found("job")
    return booking, assignment, (await _entries(session, [assignment.id]))[assignment.id]


def _field_conflict(slug: str, title: str, detail: str, booking: Booking) -> Problem:
    return Problem(409, slug, title, detail, booking_status=booking.status)


async def _action(
    session: AsyncSession,
    ctx: OrgContext,
    booking: Booking,
    assignment: BookingAssignment,
    entry: TimeEntry | None,
    now: datetime,
) -> FieldAction:
    await session.flush()
    entries = (await _entries(session, [assignment.id]))[assignment.id]
    addresses = await _addresses(session, [booking])
    return FieldAction(
        job=_job(ctx, booking, assignment, entries, addresses.get(booking.address_id), now),
        entry=TimeEntryRead.from_model(entry, ctx.tz) if entry else None,
    )


async def start(
    session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
) -> tuple[FieldAction, bool]:
    """Start work. Repeating it returns the first entry unchanged (created=False)."""
    booking, assignment, entries = await _locked(session, principal, booking_id)
    now = datetime.now(UTC)
    if entries:
        return await _action(session, ctx, booking, assignment, entries[0], now), False
    if booking.payment_hold:
        raise _field_conflict(
            "payment-hold",
            "This job is on payment hold",
            "The client's visits are on hold until an unpaid invoice is settled; the office has been told.",
            booking,
        )
    if booking.status == "confirmed":
        await set_status(session, booking, "in_progress", at=now)
    elif booking.status != "in_progress":
        raise _field_conflict(
            "illegal-transition",
            "This job cannot be started",
            f"A {booking.status} booking cannot be started; it must be confirmed first.",
            booking,
        )
    entry = TimeEntry(
        org_id=ctx.org_id,
        booking_id=booking.id,
        assignment_id=assignment.id,
        worker_id=assignment.worker_id,
        started_at=now,
    )
    session.add(entry)
    assignment.started_at = now
    return await _action(session, ctx, booking, assignment, entry, now), True


async def travel(
    session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
) -> tuple[FieldAction, bool]:
    """An assigned cleaner sets off for a confirmed job of today or later: stored on the booking
    and announced (BookingTravelStarted: the client's on-my-way message). Once per booking: a
    second press, by them or a teammate, answers the same and announces nothing (created=False)."""
    booking, assignment, _ = await _locked(session, principal, booking_id)
    now = datetime.now(UTC)
    if booking.travel_started_at is not None:
        return await _action(session, ctx, booking, assignment, None, now), False
    if booking.payment_hold:
        raise _field_conflict(
            "payment-hold",
            "This job is on payment hold",
            "The client's visits are on hold until an unpaid invoice is settled; the office has been told.",
            booking,
        )
    if booking.status != "confirmed" or assignment.finished_at is not None:
        raise _field_conflict(
            "illegal-transition",
            "You cannot set off for this job",
            f"Travel is for a confirmed job not started yet; this one is {booking.status}.",
            booking,
        )
    if timeutil.local_date(booking.starts_at, ctx.tz) < timeutil.local_date(now, ctx.tz):
        raise _field_conflict(
            "job-not-upcoming", "This job is in the past", "Travel is for a job of today or later.", booking
        )
    booking.travel_started_at = now
    emit(
        session,
        BookingTravelStarted(
            org_id=ctx.org_id,
            booking_id=booking.id,
            series_id=booking.series_id,
            worker_id=assignment.worker_id,
            starts_at=booking.starts_at,
            travel_started_at=now,
        ),
    )
    return await _action(session, ctx, booking, assignment, None, now), True


def _open(entries: Sequence[TimeEntry]) -> TimeEntry | None:
    return next((e for e in entries if e.ended_at is None), None)


async def pause(session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID) -> FieldAction:
    booking, assignment, entries = await _locked(session, principal, booking_id)
    now = datetime.now(UTC)
    running = _open(entries)
    if running is None or assignment.finished_at is not None:
        raise _field_conflict("job-not-running", "The job is not running", "Only a running job can be paused.", booking)
    running.ended_at = now
    return await _action(session, ctx, booking, assignment, running, now)


async def resume(session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID) -> FieldAction:
    booking, assignment, entries = await _locked(session, principal, booking_id)
    now = datetime.now(UTC)
    if (
        not entries
        or _open(entries) is not None
        or assignment.finished_at is not None
        or booking.status != "in_progress"
    ):
        raise _field_conflict("job-not-paused", "The job is not paused", "Only a paused job can be resumed.", booking)
    entry = TimeEntry(
        org_id=ctx.org_id,
        booking_id=booking.id,
        assignment_id=assignment.id,
        worker_id=assignment.worker_id,
        started_at=now,
    )
    session.add(entry)
    return await _action(session, ctx, booking, assignment, entry, now)


def overrun_reason_required(worked: int, planned: int, percent: int) -> Problem:
    return Problem(
        400,
        "overrun-reason-required",
        "A reason is required for this overrun",
        f"{worked} minutes worked against {planned} planned is more than {percent}% over; say why in `reason`.",
        worked_minutes=worked,
        planned_minutes=planned,
        errors=[{"field": "reason", "message": f"required when finishing more than {percent}% over plan"}],
    )


async def finish(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    booking_id: UUID,
    reason: str | None,
    overrun_percent: int,
) -> FieldAction:
    booking, assignment, entries = await _locked(session, principal, booking_id)
    now = datetime.now(UTC)
    if not entries or assignment.finished_at is not None or booking.status != "in_progress":
        raise _field_conflict(
            "job-not-started", "The job is not in progress", "Only a started, unfinished job can be finished.", booking
        )
    worked = int(_worked(entries, now).total_seconds() // 60)
    planned = booking.estimated_minutes
    if worked * 100 > planned * (100 + overrun_percent) and not (reason and reason.strip()):
        raise overrun_reason_required(worked, planned, overrun_percent)
    running = _open(entries)
    if running is not None:
        running.ended_at = now
    assignment.finished_at = now
    assignment.overrun_reason = reason.strip() if reason and reason.strip() else None
    await session.flush()
    others = await session.scalars(
        select(BookingAssignment.id).where(
            BookingAssignment.booking_id == booking.id, BookingAssignment.finished_at.is_(None)
        )
    )
    if others.first() is None:
        await set_status(session, booking, "completed", at=now)
    return await _action(session, ctx, booking, assignment, running, now)
