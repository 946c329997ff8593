"""Putting bookings on the calendar: create, move, and (un)assign workers.

Every write checks the rules first (`rules`: start, hours, time off; overrides audited) and
writes assignments through `assignments.flush_assignments`, where the database refuses a double
booking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import PricingParams, Quote
from spotless.domain.clients.public import get_bookable_client
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import states
from spotless.domain.scheduling.assignments import (
    MAX_BOOKING_MINUTES,
    busy_range,
    flush_assignments,
    flushed,
    insert_assignments,
    new_assignments,
)
from spotless.domain.scheduling.bookings import assignments_of, get_booking
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.events import BookingAssignmentsChanged, BookingCreated, BookingRescheduled
from spotless.domain.scheduling.models import Booking
from spotless.domain.scheduling.pricing import default_params, price, snapshot
from spotless.domain.scheduling.rules import apply_rules, audit_override, check_start, resolve_workers
from spotless.domain.scheduling.schemas import BookingCreate, Override
from spotless.domain.workforce.public import get_active_workers
from spotless.lib.errors import Problem
from spotless.lib.events import emit
from spotless.lib.sql import NewRow

# A booking is written as one INSERT through asyncpg, not a unit-of-work flush (lib.sql.NewRow).
_NEW_BOOKING = NewRow(Booking)


@dataclass(frozen=True)
class Placement:
    """Everything needed to put one booking on the calendar (one-off or a series occurrence)."""

    client_id: UUID
    address_id: UUID
    service_id: UUID
    starts_at: datetime
    worker_ids: list[UUID]
    params: PricingParams
    addon_ids: list[UUID]
    frequency: str = "once"
    team_id: UUID | None = None
    notes: str | None = None
    duration_minutes: int | None = None
    series_id: UUID | None = None
    occurrence_date: date | None = None


def _check_minutes(minutes: int) -> None:
    if minutes <= 0:
        raise Problem(
            409,
            "service-without-duration",
            "The service has no duration",
            "This service and its options add up to 0 minutes; set minutes on the service first.",
        )
    if minutes > MAX_BOOKING_MINUTES:
        raise Problem(
            409,
            "booking-too-long",
            "The booking would be too long",
            f"This visit adds up to {minutes} minutes; a booking lasts at most {MAX_BOOKING_MINUTES}.",
            estimated_minutes=minutes,
        )


async def place(
    session: AsyncSession,
    ctx: OrgContext,
    principal: Principal | None,
    placement: Placement,
    override: Override | None = None,
    quote: Quote | None = None,
    *,
    announce: bool = True,
) -> Booking:
    """Price, check and write one booking with its assignments, and emit `BookingCreated` (not for
    a placeholder written only to be cancelled at once: `announce=False`). Raises SchedulingConflict."""
    quote = quote or await price(
        session, ctx, placement.service_id, placement.params, placement.addon_ids, placement.frequency
    )
    minutes = placement.duration_minutes or quote.estimated_minutes
    _check_minutes(minutes)
    start = placement.starts_at
    end = start + timedelta(minutes=minutes)
    overridden = await apply_rules(session, ctx, principal, placement.worker_ids, start, end, override)
    booking = Booking(
        org_id=ctx.org_id,
        client_id=placement.client_id,
        address_id=placement.address_id,
        service_id=placement.service_id,
        team_id=placement.team_id,
        series_id=placement.series_id,
        occurrence_date=placement.occurrence_date,
        starts_at=start,
        ends_at=end,
        status="pending",
        frequency=placement.frequency,
        price=snapshot(quote),
        total_cents=quote.total_cents,
        currency=quote.currency,
        estimated_minutes=minutes,
        params=msgspec.to_builtins(placement.params),
        addon_ids=[str(a) for a in placement.addon_ids],
        notes=placement.notes,
        created_by=principal.user_id if principal else None,
    )
    await _NEW_BOOKING.add(session, booking)
    during = busy_range(start, end, ctx.buffer)
    write = insert_assignments(session, ctx, booking, placement.worker_ids, during)
    await flush_assignments(session, booking.id, placement.worker_ids, during, write)
    if overridden and override is not None:
        await audit_override(session, principal, booking, override, overridden, "create")
    if announce:
        emit(
            session,
            BookingCreated(
                org_id=ctx.org_id,
                booking_id=booking.id,
                series_id=booking.series_id,
                client_id=booking.client_id,
                starts_at=start,
                ends_at=end,
            ),
        )
    return booking


async def create_booking(
    session: AsyncSession, principal: Principal, ctx: OrgContext, data: BookingCreate
) -> tuple[Booking, list[UUID]]:
    start = check_start(data.starts_at)
    address = await get_bookable_client(session, data.client_id, data.address_id)
    worker_ids = await resolve_workers(session, data.worker_ids, data.team_id)
    placement = Placement(
        client_id=data.client_id,
        address_id=data.address_id,
        service_id=data.service_id,
        starts_at=start,
        worker_ids=worker_ids,
        params=default_params(address, data.params),
        addon_ids=list(data.addon_ids),
        team_id=data.team_id,
        notes=data.notes,
    )
    booking = await place(session, ctx, principal, placement, data.override)
    return booking, worker_ids


def require_editable(booking: Booking, action: str) -> None:
    if booking.status not in states.EDITABLE:
        raise Problem(
            409,
            "booking-not-editable",
            "The booking can no longer be changed",
            f"A {booking.status} booking cannot be {action}; only pending or confirmed ones can.",
            booking_status=booking.status,
        )


async def move(
    session: AsyncSession,
    ctx: OrgContext,
    principal: Principal | None,
    booking: Booking,
    new_start: datetime,
    override: Override | None,
    minutes: int | None = None,
) -> list[UUID]:
    """Move a booking (same duration unless given), keeping its assignment ranges in step."""
    require_editable(booking, "rescheduled")
    duration = timedelta(minutes=minutes) if minutes else booking.ends_at - booking.starts_at
    new_end = new_start + duration
    rows = await assignments_of(session, booking.id)
    worker_ids = [r.worker_id for r in rows]
    overridden = await apply_rules(session, ctx, principal, worker_ids, new_start, new_end, override)
    previous_start = booking.starts_at
    booking.starts_at, booking.ends_at = new_start, new_end
    if minutes:
        booking.estimated_minutes = minutes
    during = busy_range(new_start, new_end, ctx.buffer)

    def shift() -> None:
        for row in rows:
            row.starts_at, row.ends_at, row.during = new_start, new_end, during

    await flush_assignments(session, booking.id, worker_ids, during, flushed(session, shift))
    if overridden and override is not None:
        await audit_override(session, principal, booking, override, overridden, "reschedule")
    if new_start != previous_start:
        # A moved visit is a new trip: the cleaner's next "on my way" tells the client again.
        booking.travel_started_at = None
    if new_start != previous_start or minutes:
        emit(
            session,
            BookingRescheduled(
                org_id=ctx.org_id,
                booking_id=booking.id,
                series_id=booking.series_id,
                previous_starts_at=previous_start,
                starts_at=new_start,
                ends_at=new_end,
            ),
        )
    return worker_ids


async def reschedule(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    booking_id: UUID,
    new_start: datetime,
    override: Override | None,
) -> tuple[Booking, list[UUID]]:
    booking = await get_booking(session, principal, booking_id, for_update=True)
    worker_ids = await move(session, ctx, principal, booking, check_start(new_start), override)
    return booking, worker_ids


async def assign(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    booking_id: UUID,
    worker_ids: Sequence[UUID],
    override: Override | None,
) -> tuple[Booking, list[UUID]]:
    booking = await get_booking(session, principal, booking_id, for_update=True)
    require_editable(booking, "reassigned")
    rows = await assignments_of(session, booking.id)
    current = [r.worker_id for r in rows]
    new = [w for w in dict.fromkeys(worker_ids) if w not in current]
    if new:
        await get_active_workers(session, new)
        overridden = await apply_rules(session, ctx, principal, new, booking.starts_at, booking.ends_at, override)
        during = busy_range(booking.starts_at, booking.ends_at, ctx.buffer)
        added = new_assignments(ctx, booking, new, during)
        await flush_assignments(session, booking.id, new, during, flushed(session, lambda: session.add_all(added)))
        if overridden and override is not None:
            await audit_override(session, principal, booking, override, overridden, "assign")
        _announce_workers(session, booking, current + new)
    return booking, current + new


def _announce_workers(session: AsyncSession, booking: Booking, worker_ids: list[UUID]) -> None:
    emit(
        session,
        BookingAssignmentsChanged(
            org_id=booking.org_id, booking_id=booking.id, series_id=booking.series_id, worker_ids=worker_ids
        ),
    )


async def unassign(
    session: AsyncSession, principal: Principal, booking_id: UUID, worker_ids: Sequence[UUID]
) -> tuple[Booking, list[UUID]]:
    booking = await get_booking(session, principal, booking_id, for_update=True)
    require_editable(booking, "reassigned")
    rows = {r.worker_id: r for r in await assignments_of(session, booking.id)}
    for worker_id in worker_ids:
        if worker_id not in rows:
            raise Problem(
                404,
                "not-found",
                "Not found",
                f"Worker {worker_id} is not assigned to this booking.",
                worker_id=str(worker_id),
            )
    for worker_id in dict.fromkeys(worker_ids):
        await session.delete(rows.pop(worker_id))
    await session.flush()
    if worker_ids:
        _announce_workers(session, booking, list(rows))
    return booking, list(rows)
