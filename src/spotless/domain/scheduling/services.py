"""Booking rules: create, move, (un)assign, and the life cycle.

No double booking is the database's job (`ex_booking_assignment_no_overlap`); this module writes
assignments inside a savepoint and turns the constraint's refusal into a 409 naming the booking
it collided with. Working hours and time off are checked here (they are advice the dispatcher may
override, not invariants), and every override is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Select, and_, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.services import record_audit
from spotless.domain.catalog import services as catalog
from spotless.domain.catalog.pricing import PricingParams, Quote, QuoteParams
from spotless.domain.clients import services as clients
from spotless.domain.identity.principal import Principal
from spotless.domain.scheduling import states, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.events import STATUS_EVENTS, BookingCreated, BookingRescheduled
from spotless.domain.scheduling.models import Booking, BookingAssignment
from spotless.domain.scheduling.schemas import BookingCreate, BookingOut, Override, Price
from spotless.domain.scheduling.slots import WeeklyHours, fits_working_hours
from spotless.domain.workforce import services as workforce
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.events import emit
from spotless.lib.pagination import Keyset

EXCLUSION_VIOLATION = "23P01"
# Longest booking, and the longest time an assignment holds (job + the largest travel buffer):
# lets worker-time queries bound their index range scans.
MAX_BOOKING_MINUTES = 24 * 60
MAX_HELD = timedelta(minutes=MAX_BOOKING_MINUTES + 240)
# How far ahead (and back) a booking may be placed: keeps input sane and queries bounded.
MAX_YEARS_AHEAD = 5


class SchedulingConflict(Problem):
    """A 409 the series materialiser records instead of failing (conflict, hours, time off)."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        worker_id: UUID | None = None,
        conflicting_booking_id: UUID | None = None,
        **extra: Any,
    ) -> None:
        self.reason = slug
        self.worker_id = worker_id
        self.conflicting_booking_id = conflicting_booking_id
        if worker_id is not None:
            extra["worker_id"] = str(worker_id)
        if slug == "booking-conflict":
            extra["conflicting_booking_id"] = str(conflicting_booking_id) if conflicting_booking_id else None
        titles = {
            "booking-conflict": "The worker is already booked at that time",
            "outside-working-hours": "Outside the worker's working hours",
            "worker-time-off": "The worker is off at that time",
        }
        super().__init__(409, slug, titles.get(slug, "Conflicts with the current state"), detail, **extra)


def illegal_transition(current: str, target: str) -> Problem:
    return Problem(
        409,
        "illegal-transition",
        "This status change is not allowed",
        f"A booking cannot go from {current} to {target}.",
        **_from_to(current, target),
    )


def _from_to(current: str, target: str) -> dict[str, Any]:
    # `from` is a keyword in Python: the problem's extra members are passed as a mapping.
    return {"from": current, "to": target}


# --- reading -----------------------------------------------------------------------------------


async def worker_id_for(session: AsyncSession, principal: Principal) -> UUID | None:
    """The caller's own worker profile when they act as a cleaner (role `worker`)."""
    worker = await workforce.get_worker_for_user(session, principal.user_id)
    return worker.id if worker else None


def narrows_to_own(principal: Principal) -> bool:
    """Cleaners see and act on their own assignments only."""
    return principal.role == "worker"


async def get_booking(
    session: AsyncSession, principal: Principal, booking_id: UUID, *, for_update: bool = False
) -> Booking:
    stmt = select(Booking).where(Booking.id == booking_id)
    if for_update:
        stmt = stmt.with_for_update()
    booking = await session.scalar(stmt)
    if booking is None:
        raise not_found("booking")
    if narrows_to_own(principal):
        own = await worker_id_for(session, principal)
        assigned = own is not None and await session.scalar(
            select(BookingAssignment.id).where(
                BookingAssignment.booking_id == booking_id, BookingAssignment.worker_id == own
            )
        )
        if not assigned:
            raise not_found("booking")
    return booking


async def workers_of(session: AsyncSession, booking_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    out: dict[UUID, list[UUID]] = {b: [] for b in booking_ids}
    if not booking_ids:
        return out
    rows = await session.execute(
        select(BookingAssignment.booking_id, BookingAssignment.worker_id)
        .where(BookingAssignment.booking_id.in_(list(booking_ids)))
        .order_by(BookingAssignment.booking_id, BookingAssignment.created_at, BookingAssignment.id)
    )
    for booking_id, worker_id in rows:
        out[booking_id].append(worker_id)
    return out


@dataclass(frozen=True)
class BookingFilters:
    date_from: date | None = None
    date_to: date | None = None
    status: str | None = None
    worker_id: UUID | None = None
    client_id: UUID | None = None
    series_id: UUID | None = None


def list_query(ctx: OrgContext, filters: BookingFilters) -> Select[Any]:
    # org_id is also what RLS enforces; naming it lets the planner use (org_id, starts_at).
    stmt = select(Booking).where(Booking.org_id == ctx.org_id)
    start = timeutil.day_start_utc(filters.date_from, ctx.tz) if filters.date_from else None
    end = timeutil.day_start_utc(filters.date_to + timedelta(days=1), ctx.tz) if filters.date_to else None
    if start is not None:
        stmt = stmt.where(Booking.starts_at >= start)
    if end is not None:
        stmt = stmt.where(Booking.starts_at < end)
    if filters.status:
        stmt = stmt.where(Booking.status == filters.status)
    if filters.client_id:
        stmt = stmt.where(Booking.client_id == filters.client_id)
    if filters.series_id:
        stmt = stmt.where(Booking.series_id == filters.series_id)
    if filters.worker_id:
        assigned = select(BookingAssignment.booking_id).where(
            BookingAssignment.org_id == ctx.org_id, BookingAssignment.worker_id == filters.worker_id
        )
        if start is not None:
            assigned = assigned.where(BookingAssignment.starts_at >= start)
        if end is not None:
            assigned = assigned.where(BookingAssignment.starts_at < end)
        stmt = stmt.where(Booking.id.in_(assigned))
    return stmt


BOOKING_ORDER: Keyset[Booking] = Keyset(
    "bookings", [Booking.starts_at, Booking.id], [datetime, UUID], key=lambda b: (b.starts_at, b.id)
)


async def list_bookings(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    filters: BookingFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Booking], str | None, bool, dict[UUID, list[UUID]]]:
    """By start, then id: a keyset page on (org_id, starts_at, id), never a count or an offset."""
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise FieldError("date_to", "date_to must not be before date_from")
    if filters.status and filters.status not in states.STATUSES:
        raise FieldError("status", f"status must be one of {', '.join(states.STATUSES)}")
    if narrows_to_own(principal):
        own = await worker_id_for(session, principal)
        if own is None or (filters.worker_id and filters.worker_id != own):
            return [], None, False, {}
        filters = BookingFilters(**{**filters.__dict__, "worker_id": own})
    found = await session.scalars(BOOKING_ORDER.apply(list_query(ctx, filters), cursor, limit))
    rows, next_cursor, has_more = BOOKING_ORDER.page(list(found), limit)
    return rows, next_cursor, has_more, await workers_of(session, [b.id for b in rows])


def to_out(booking: Booking, worker_ids: Sequence[UUID], ctx: OrgContext) -> BookingOut:
    def loc(value: datetime | None) -> datetime | None:
        return timeutil.local(value, ctx.tz) if value else None

    price = booking.price or {}
    return BookingOut(
        id=booking.id,
        client_id=booking.client_id,
        address_id=booking.address_id,
        service_id=booking.service_id,
        status=booking.status,
        starts_at=timeutil.local(booking.starts_at, ctx.tz),
        ends_at=timeutil.local(booking.ends_at, ctx.tz),
        timezone=ctx.tz_name,
        estimated_minutes=booking.estimated_minutes,
        worker_ids=list(worker_ids),
        total_cents=booking.total_cents,
        currency=booking.currency,
        price=Price(
            currency=booking.currency,
            line_items=list(price.get("line_items", [])),
            subtotal_cents=int(price.get("subtotal_cents", booking.total_cents)),
            discount_cents=int(price.get("discount_cents", 0)),
            tax_cents=int(price.get("tax_cents", 0)),
            total_cents=booking.total_cents,
        ),
        params=dict(booking.params or {}),
        addon_ids=[UUID(a) for a in booking.addon_ids or []],
        frequency=booking.frequency,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
        team_id=booking.team_id,
        series_id=booking.series_id,
        occurrence_date=booking.occurrence_date,
        notes=booking.notes,
        cancel_reason=booking.cancel_reason,
        override_reason=booking.override_reason,
        confirmed_at=loc(booking.confirmed_at),
        started_at=loc(booking.started_at),
        completed_at=loc(booking.completed_at),
        cancelled_at=loc(booking.cancelled_at),
    )


# --- rules ------------------------------------------------------------------------------------


def check_start(starts_at: datetime, field: str = "starts_at") -> datetime:
    if starts_at.tzinfo is None:
        raise FieldError(field, "must include a UTC offset")
    value = starts_at.astimezone(UTC)
    now = datetime.now(UTC)
    if abs((value - now).days) > 366 * MAX_YEARS_AHEAD:
        raise FieldError(field, f"must be within {MAX_YEARS_AHEAD} years of today")
    return value


async def resolve_workers(session: AsyncSession, worker_ids: Sequence[UUID], team_id: UUID | None) -> list[UUID]:
    """The explicit workers plus the team's active members; every one must be an active worker."""
    ids = list(dict.fromkeys(worker_ids))
    if team_id is not None:
        ids.extend(w for w in await workforce.team_worker_ids(session, team_id) if w not in ids)
    if ids:
        await workforce.get_active_workers(session, ids)
    return ids


async def rule_violations(
    session: AsyncSession, ctx: OrgContext, worker_ids: Sequence[UUID], start: datetime, end: datetime
) -> list[SchedulingConflict]:
    """Working-hours and time-off problems for these workers at [start, end), in worker order."""
    if not worker_ids:
        return []
    schedules = await workforce.schedules(session, worker_ids, start, end)
    found: list[SchedulingConflict] = []
    for worker_id in worker_ids:
        schedule = schedules.get(worker_id)
        hours = [WeeklyHours(h.weekday, h.start, h.end) for h in schedule.hours] if schedule else []
        if not fits_working_hours(start, end, hours, ctx.tz):
            found.append(
                SchedulingConflict(
                    "outside-working-hours",
                    "The booking is outside the worker's working hours; a dispatcher may override with a reason.",
                    worker_id=worker_id,
                )
            )
        for off in schedule.time_off if schedule else ():
            if off.starts_at < end and start < off.ends_at:
                found.append(
                    SchedulingConflict(
                        "worker-time-off",
                        "The worker has time off then; a dispatcher may override with a reason.",
                        worker_id=worker_id,
                        time_off_id=str(off.id),
                    )
                )
                break
    return found


async def apply_rules(
    session: AsyncSession,
    ctx: OrgContext,
    principal: Principal | None,
    worker_ids: Sequence[UUID],
    start: datetime,
    end: datetime,
    override: Override | None,
) -> list[SchedulingConflict]:
    """Raise the first violation unless overridden by someone allowed to; returns what was overridden."""
    violations = await rule_violations(session, ctx, worker_ids, start, end)
    if not violations:
        return []
    if override is None:
        raise violations[0]
    if principal is None or not principal.can("bookings.assign"):
        raise Problem(
            403,
            "forbidden",
            "You do not have permission for this action",
            "Overriding working hours or time off requires the bookings.assign permission.",
        )
    return violations


async def audit_override(
    session: AsyncSession,
    principal: Principal | None,
    booking: Booking,
    override: Override,
    violations: Sequence[SchedulingConflict],
    action: str,
) -> None:
    booking.override_reason = override.reason
    record_audit(
        session,
        principal,
        action=f"booking.override.{action}",
        resource_type="booking",
        resource_id=str(booking.id),
        meta={
            "reason": override.reason,
            "overridden": [{"type": v.reason, "worker_id": str(v.worker_id)} for v in violations],
            "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat(),
        },
        org_id=booking.org_id,
    )


def busy_range(start: datetime, end: datetime, buffer: timedelta) -> Range[datetime]:
    """The time an assignment holds: the job, then the travel buffer before the next one."""
    return Range(start, end + buffer, bounds="[)")


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
    change: Callable[[], None],
) -> None:
    """Apply `change` (new or moved assignment rows) in a savepoint and flush it; a refusal by the
    exclusion constraint becomes a 409 booking-conflict naming the booking it collided with
    (looked up once the savepoint is rolled back: Postgres only refuses after the other
    transaction has committed, so it is visible)."""
    # Everything else first: opening a savepoint flushes pending changes outside of it.
    await session.flush()
    try:
        async with session.begin_nested():
            change()
            await session.flush()
    except sa_exc.IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        other, worker = await find_conflict(session, worker_ids, during, booking_id)
        raise SchedulingConflict(
            "booking-conflict",
            "The worker already has a booking at that time (travel buffer included).",
            worker_id=worker,
            conflicting_booking_id=other,
        ) from None


# --- pricing ----------------------------------------------------------------------------------


def default_params(address: Any, params: PricingParams | None) -> PricingParams:
    if params is not None:
        return params
    return PricingParams(
        bedrooms=address.bedrooms or 0, bathrooms=address.bathrooms or 0, square_feet=address.square_feet
    )


async def price(
    session: AsyncSession,
    ctx: OrgContext,
    service_id: UUID,
    params: PricingParams,
    addon_ids: Sequence[UUID],
    frequency: str,
) -> Quote:
    quote_params = QuoteParams(
        bedrooms=params.bedrooms,
        bathrooms=params.bathrooms,
        square_feet=params.square_feet,
        addon_ids=tuple(addon_ids),
        frequency=frequency,  # type: ignore[arg-type]
    )
    return await catalog.quote_for(session, ctx.organization, service_id, quote_params)


def snapshot(quote: Quote) -> dict[str, Any]:
    return msgspec.to_builtins(quote)  # type: ignore[no-any-return]


# --- writing ----------------------------------------------------------------------------------


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
    session.add(booking)
    await session.flush()
    during = busy_range(start, end, ctx.buffer)
    rows = [
        BookingAssignment(
            org_id=ctx.org_id,
            booking_id=booking.id,
            worker_id=w,
            starts_at=start,
            ends_at=end,
            during=during,
            active=True,
        )
        for w in placement.worker_ids
    ]
    await flush_assignments(session, booking.id, placement.worker_ids, during, lambda: session.add_all(rows))
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
    _client, address = await clients.get_bookable_client(session, data.client_id, data.address_id)
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


async def _assignments(session: AsyncSession, booking_id: UUID) -> list[BookingAssignment]:
    return list(
        await session.scalars(
            select(BookingAssignment)
            .where(BookingAssignment.booking_id == booking_id)
            .order_by(BookingAssignment.created_at, BookingAssignment.id)
        )
    )


def _require_editable(booking: Booking, action: str) -> None:
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
    _require_editable(booking, "rescheduled")
    duration = timedelta(minutes=minutes) if minutes else booking.ends_at - booking.starts_at
    new_end = new_start + duration
    rows = await _assignments(session, booking.id)
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

    await flush_assignments(session, booking.id, worker_ids, during, shift)
    if overridden and override is not None:
        await audit_override(session, principal, booking, override, overridden, "reschedule")
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
    _require_editable(booking, "reassigned")
    rows = await _assignments(session, booking.id)
    current = [r.worker_id for r in rows]
    new = [w for w in dict.fromkeys(worker_ids) if w not in current]
    if new:
        await workforce.get_active_workers(session, new)
        overridden = await apply_rules(session, ctx, principal, new, booking.starts_at, booking.ends_at, override)
        during = busy_range(booking.starts_at, booking.ends_at, ctx.buffer)
        added = [
            BookingAssignment(
                org_id=ctx.org_id,
                booking_id=booking.id,
                worker_id=w,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                during=during,
                active=True,
            )
            for w in new
        ]
        await flush_assignments(session, booking.id, new, during, lambda: session.add_all(added))
        if overridden and override is not None:
            await audit_override(session, principal, booking, override, overridden, "assign")
    return booking, current + new


async def unassign(
    session: AsyncSession, principal: Principal, booking_id: UUID, worker_ids: Sequence[UUID]
) -> tuple[Booking, list[UUID]]:
    booking = await get_booking(session, principal, booking_id, for_update=True)
    _require_editable(booking, "reassigned")
    rows = {r.worker_id: r for r in await _assignments(session, booking.id)}
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
    return booking, list(rows)


async def set_status(
    session: AsyncSession,
    booking: Booking,
    target: str,
    *,
    reason: str | None = None,
    at: datetime | None = None,
) -> None:
    """Apply a legal transition: timestamps, the worker's time released, the change announced."""
    if not states.can_move(booking.status, target):
        raise illegal_transition(booking.status, target)
    now = at or datetime.now(UTC)
    booking.status = target
    if target == "confirmed":
        booking.confirmed_at = now
    elif target == "in_progress":
        booking.started_at = booking.started_at or now
    elif target == "completed":
        booking.completed_at = now
        # Close any stretch still running: the job is over whoever closed it.
        await session.execute(
            text("UPDATE time_entry SET ended_at = :now, updated_at = :now WHERE booking_id = :b AND ended_at IS NULL"),
            {"now": now, "b": booking.id},
        )
    elif target == "cancelled":
        booking.cancelled_at = now
        booking.cancel_reason = reason
    if not states.holds_time(target):
        await session.execute(
            update(BookingAssignment)
            .where(and_(BookingAssignment.booking_id == booking.id, BookingAssignment.active))
            .values(active=False, updated_at=now)
        )
    await session.flush()
    _announce(session, booking, target, now)


def _announce(session: AsyncSession, booking: Booking, target: str, now: datetime) -> None:
    event_type = STATUS_EVENTS.get(target)
    if event_type is None:
        return
    facts: dict[str, Any] = {"org_id": booking.org_id, "booking_id": booking.id, "series_id": booking.series_id}
    if target == "completed":
        facts["completed_at"] = now
    elif target == "cancelled":
        facts["reason"] = booking.cancel_reason
    emit(session, event_type(**facts))


async def transition(
    session: AsyncSession, principal: Principal, booking_id: UUID, target: str, *, reason: str | None = None
) -> Booking:
    booking = await get_booking(session, principal, booking_id, for_update=True)
    await set_status(session, booking, target, reason=reason)
    return booking
