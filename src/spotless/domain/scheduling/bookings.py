"""Reading bookings: who may see which, the workers on them, and the list.

Cleaners (role `worker`) see and act on their own assignments only: another booking is a 404 to
them, exactly as if it did not exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.functions import array_agg

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import states, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking, BookingAssignment
from spotless.domain.scheduling.schemas import BookingRead
from spotless.domain.workforce.public import worker_id_of_user
from spotless.lib.errors import FieldError, not_found
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.query import KeysetRead, get_or_404


async def worker_id_for(session: AsyncSession, principal: Principal) -> UUID | None:
    """The caller's own worker profile when they act as a cleaner (role `worker`)."""
    return await worker_id_of_user(session, principal.user_id)


def narrows_to_own(principal: Principal) -> bool:
    """Cleaners see and act on their own assignments only."""
    return principal.role == "worker"


async def get_booking(
    session: AsyncSession, principal: Principal, booking_id: UUID, *, for_update: bool = False
) -> Booking:
    booking = await get_or_404(session, Booking, booking_id, "booking", with_for_update=for_update)
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


async def assignments_of(session: AsyncSession, booking_id: UUID) -> list[BookingAssignment]:
    """The booking's assignments in the order the workers were added."""
    return list(
        await session.scalars(
            select(BookingAssignment)
            .where(BookingAssignment.booking_id == booking_id)
            .order_by(BookingAssignment.created_at, BookingAssignment.id)
        )
    )


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


# What a booking answers (`BookingRead.from_row`), read as columns: no ORM object, no identity map.
# `worker_ids`: every assignment's worker in the order they were added (as `workers_of`), in the
# same statement as the booking (an index scan on booking_assignment.booking_id per row).
_WORKER_IDS = (
    select(
        array_agg(aggregate_order_by(BookingAssignment.worker_id, BookingAssignment.created_at, BookingAssignment.id))
    )
    .where(BookingAssignment.booking_id == Booking.id)
    .correlate(Booking)
    .scalar_subquery()
    .label("worker_ids")
)
BOOKING_COLUMNS = (
    Booking.id,
    Booking.client_id,
    Booking.address_id,
    Booking.service_id,
    Booking.status,
    Booking.starts_at,
    Booking.ends_at,
    Booking.estimated_minutes,
    Booking.total_cents,
    Booking.currency,
    Booking.price,
    Booking.params,
    Booking.addon_ids,
    Booking.frequency,
    Booking.created_at,
    Booking.updated_at,
    Booking.team_id,
    Booking.series_id,
    Booking.occurrence_date,
    Booking.notes,
    Booking.cancel_reason,
    Booking.override_reason,
    Booking.confirmed_at,
    Booking.started_at,
    Booking.completed_at,
    Booking.cancelled_at,
    Booking.payment_hold,
    _WORKER_IDS,
)


async def booking_read(session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID) -> BookingRead:
    """The booking as answered after an action that does not say who is on it: one row (its
    workers included), visible to a cleaner only when they are on it (else 404, as `get_booking`)."""
    row = (await session.execute(select(*BOOKING_COLUMNS).where(Booking.id == booking_id))).first()
    if row is None:
        raise not_found("booking")
    if narrows_to_own(principal):
        own = await worker_id_for(session, principal)
        if own is None or own not in (row.worker_ids or ()):
            raise not_found("booking")
    return BookingRead.from_row(row, ctx)


@dataclass(frozen=True)
class BookingFilters:
    date_from: date | None = None
    date_to: date | None = None
    status: str | None = None
    worker_id: UUID | None = None
    client_id: UUID | None = None
    series_id: UUID | None = None
    payment_hold: bool | None = None


def _list_statement(shape: tuple[bool, bool, bool, bool, bool, bool, bool]) -> Select[Any]:
    """The list for one shape: which of (start, end, status, client, series, worker, payment hold)
    filter it. Every value is bound by name, so each shape compiles once (lib.query.KeysetRead)."""
    has_start, has_end, has_status, has_client, has_series, has_worker, has_hold = shape
    # org_id is also what RLS enforces; naming it lets the planner use (org_id, starts_at).
    stmt = select(*BOOKING_COLUMNS).where(Booking.org_id == bindparam("org_id"))
    if has_start:
        stmt = stmt.where(Booking.starts_at >= bindparam("start"))
    if has_end:
        stmt = stmt.where(Booking.starts_at < bindparam("end"))
    if has_status:
        stmt = stmt.where(Booking.status == bindparam("status"))
    if has_client:
        stmt = stmt.where(Booking.client_id == bindparam("client_id"))
    if has_series:
        stmt = stmt.where(Booking.series_id == bindparam("series_id"))
    if has_hold:
        stmt = stmt.where(Booking.payment_hold == bindparam("payment_hold"))
    if has_worker:
        assigned = select(BookingAssignment.booking_id).where(
            BookingAssignment.org_id == bindparam("org_id"), BookingAssignment.worker_id == bindparam("worker_id")
        )
        if has_start:
            assigned = assigned.where(BookingAssignment.starts_at >= bindparam("start"))
        if has_end:
            assigned = assigned.where(BookingAssignment.starts_at < bindparam("end"))
        stmt = stmt.where(Booking.id.in_(assigned))
    return stmt


def _list_params(ctx: OrgContext, filters: BookingFilters) -> tuple[tuple[bool, ...], dict[str, Any]]:
    values: dict[str, Any] = {
        "org_id": ctx.org_id,
        "start": timeutil.day_start_utc(filters.date_from, ctx.tz) if filters.date_from else None,
        "end": timeutil.day_start_utc(filters.date_to + timedelta(days=1), ctx.tz) if filters.date_to else None,
        "status": filters.status or None,
        "client_id": filters.client_id,
        "series_id": filters.series_id,
        "worker_id": filters.worker_id,
        "payment_hold": filters.payment_hold,
    }
    names = ("start", "end", "status", "client_id", "series_id", "worker_id", "payment_hold")
    return tuple(values[n] is not None for n in names), {k: v for k, v in values.items() if v is not None}


# Rows of BOOKING_COLUMNS (the cursor is the one the list has always answered).
BOOKING_ORDER: Keyset[Any] = Keyset(
    "bookings", [Booking.starts_at, Booking.id], [datetime, UUID], key=lambda row: (row.starts_at, row.id)
)
_LIST = KeysetRead(BOOKING_ORDER, _list_statement)


async def list_bookings(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    filters: BookingFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> CursorPage[BookingRead]:
    """By start, then id: a keyset page on (org_id, starts_at, id), never a count or an offset."""
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise FieldError("date_to", "date_to must not be before date_from")
    if filters.status and filters.status not in states.STATUSES:
        raise FieldError("status", f"status must be one of {', '.join(states.STATUSES)}")
    if narrows_to_own(principal):
        own = await worker_id_for(session, principal)
        if own is None or (filters.worker_id and filters.worker_id != own) or filters.payment_hold:
            return CursorPage(items=[], next_cursor=None, has_more=False, limit=limit)
        # A visit on payment hold is not sent to the field: it is off the cleaner's list.
        filters = replace(filters, worker_id=own, payment_hold=False)
    # One statement: the page's rows, each with its workers, mapped straight to the answer.
    shape, params = _list_params(ctx, filters)
    return await _LIST.page(
        session, shape, params, cursor=cursor, limit=limit, to=lambda row: BookingRead.from_row(row, ctx)
    )
