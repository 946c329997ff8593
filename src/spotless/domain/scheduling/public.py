"""What other contexts may use of scheduling: its events (`events.py`), the completed visits
billing invoices (read only: the booking's price snapshot, never re-priced), and what messaging
says about a visit (its time, place, cleaners and state) and counts for digests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.scheduling.models import Booking, BookingAssignment, SeriesConflict


@dataclass(frozen=True)
class BillableVisit:
    id: UUID
    client_id: UUID
    address_id: UUID
    status: str
    starts_at: datetime
    completed_at: datetime | None
    total_cents: int
    currency: str
    price: dict[str, Any]


_COLUMNS = (
    Booking.id,
    Booking.client_id,
    Booking.address_id,
    Booking.status,
    Booking.starts_at,
    Booking.completed_at,
    Booking.total_cents,
    Booking.currency,
    Booking.price,
)


def _visit(row: Any) -> BillableVisit:
    return BillableVisit(
        id=row.id,
        client_id=row.client_id,
        address_id=row.address_id,
        status=row.status,
        starts_at=row.starts_at,
        completed_at=row.completed_at,
        total_cents=row.total_cents,
        currency=row.currency,
        price=dict(row.price or {}),
    )


async def visits_by_id(session: AsyncSession, booking_ids: Sequence[UUID]) -> list[BillableVisit]:
    """The visible bookings among `booking_ids` (any status), by start."""
    if not booking_ids:
        return []
    rows = await session.execute(
        select(*_COLUMNS).where(Booking.id.in_(list(booking_ids))).order_by(Booking.starts_at, Booking.id)
    )
    return [_visit(r) for r in rows]


async def completed_visits_before(
    session: AsyncSession, org_id: UUID, before: datetime, *, excluding: Select[Any] | None = None, limit: int = 5000
) -> list[BillableVisit]:
    """Completed visits that started before `before`, by client and start; `excluding` is a select
    of booking ids to leave out (those already invoiced)."""
    stmt = select(*_COLUMNS).where(Booking.org_id == org_id, Booking.status == "completed", Booking.starts_at < before)
    if excluding is not None:
        stmt = stmt.where(Booking.id.not_in(excluding))
    rows = await session.execute(stmt.order_by(Booking.client_id, Booking.starts_at, Booking.id).limit(limit))
    return [_visit(r) for r in rows]


@dataclass(frozen=True)
class VisitNotice:
    """A visit as a message tells of it."""

    id: UUID
    client_id: UUID
    address_id: UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    payment_hold: bool
    total_cents: int
    currency: str
    worker_ids: tuple[UUID, ...]


_NOTICE_COLUMNS = (
    Booking.id,
    Booking.client_id,
    Booking.address_id,
    Booking.status,
    Booking.starts_at,
    Booking.ends_at,
    Booking.payment_hold,
    Booking.total_cents,
    Booking.currency,
)


async def _notices(session: AsyncSession, stmt: Any) -> list[VisitNotice]:
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    workers: dict[UUID, list[UUID]] = {}
    assigned = await session.execute(
        select(BookingAssignment.booking_id, BookingAssignment.worker_id)
        .where(BookingAssignment.booking_id.in_([r.id for r in rows]))
        .order_by(BookingAssignment.booking_id, BookingAssignment.created_at, BookingAssignment.id)
    )
    for booking_id, worker_id in assigned:
        workers.setdefault(booking_id, []).append(worker_id)
    return [
        VisitNotice(
            id=r.id,
            client_id=r.client_id,
            address_id=r.address_id,
            status=r.status,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            payment_hold=bool(r.payment_hold),
            total_cents=r.total_cents,
            currency=r.currency,
            worker_ids=tuple(dict.fromkeys(workers.get(r.id, []))),
        )
        for r in rows
    ]


async def visit_notice(session: AsyncSession, booking_id: UUID) -> VisitNotice | None:
    """The visible booking with its assigned workers (any status); None when not visible."""
    found = await _notices(session, select(*_NOTICE_COLUMNS).where(Booking.id == booking_id))
    return found[0] if found else None


async def visits_starting(
    session: AsyncSession, start: datetime, end: datetime, *, statuses: Sequence[str], limit: int = 5000
) -> list[VisitNotice]:
    """Visible visits in `statuses` starting in [start, end), by start."""
    stmt = (
        select(*_NOTICE_COLUMNS)
        .where(Booking.starts_at >= start, Booking.starts_at < end, Booking.status.in_(list(statuses)))
        .order_by(Booking.starts_at, Booking.id)
        .limit(limit)
    )
    return await _notices(session, stmt)


async def count_visits(session: AsyncSession, start: datetime, end: datetime, statuses: Sequence[str]) -> int:
    """How many visible visits in `statuses` start in [start, end)."""
    stmt = select(func.count()).where(
        Booking.starts_at >= start, Booking.starts_at < end, Booking.status.in_(list(statuses))
    )
    return int((await session.execute(stmt)).scalar_one())


async def count_series_conflicts(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Occurrences of series that could not be booked (conflicts), for visits in [start, end)."""
    stmt = select(func.count()).where(SeriesConflict.starts_at >= start, SeriesConflict.starts_at < end)
    return int((await session.execute(stmt)).scalar_one())


# --- field evidence (checklists and photos on a job) ---------------------------------------------


@dataclass(frozen=True)
class FieldJob:
    """A booking as the evidence context sees it: which job, of which service."""

    id: UUID
    org_id: UUID
    service_id: UUID
    status: str


def _field_job(booking: Booking) -> FieldJob:
    return FieldJob(id=booking.id, org_id=booking.org_id, service_id=booking.service_id, status=booking.status)


async def job_for_office(session: AsyncSession, principal: Any, booking_id: UUID) -> FieldJob:
    """The booking as `GET /v1/bookings/{id}` would show it (a cleaner: only their own, else 404)."""
    from spotless.domain.scheduling.bookings import get_booking

    return _field_job(await get_booking(session, principal, booking_id))


async def own_field_job(session: AsyncSession, principal: Any, booking_id: UUID) -> tuple[FieldJob, UUID]:
    """The job and the caller's worker id when the caller is assigned to it (403 without a worker
    profile; 404 for another's job, a cancelled one, or one of another organisation)."""
    from spotless.domain.scheduling.bookings import worker_id_for
    from spotless.domain.scheduling.field import no_worker_profile
    from spotless.domain.scheduling.models import BookingAssignment
    from spotless.lib.errors import not_found
    from spotless.lib.query import get_or_404

    booking = await get_or_404(session, Booking, booking_id, "job")
    worker_id = await worker_id_for(session, principal)
    if worker_id is None:
        raise no_worker_profile()
    assigned = await session.scalar(
        select(BookingAssignment.id).where(
            BookingAssignment.booking_id == booking_id, BookingAssignment.worker_id == worker_id
        )
    )
    if assigned is None or booking.status == "cancelled":
        raise not_found("job")
    return _field_job(booking), worker_id


# --- outside calendars (integrations.google) -----------------------------------------------------


@dataclass(frozen=True)
class HeldTime:
    """A visit holding a worker's time (an active assignment), as a busy block may overlap it."""

    booking_id: UUID
    worker_id: UUID
    starts_at: datetime
    ends_at: datetime


async def held_overlapping(
    session: AsyncSession, worker_id: UUID, ranges: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, HeldTime]]:
    """For each (start, end) of `ranges`, the worker's visits (job time, buffer excluded) still
    holding their time that overlap it, as (index in `ranges`, visit). One query whatever the number
    of ranges, each an index range scan bounded by the longest booking."""
    from sqlalchemy import and_, or_

    from spotless.domain.scheduling.assignments import MAX_HELD

    if not ranges:
        return []
    a = BookingAssignment
    stmt = select(a.booking_id, a.worker_id, a.starts_at, a.ends_at).where(
        a.worker_id == worker_id,
        a.active,
        or_(*(and_(a.starts_at > start - MAX_HELD, a.starts_at < end, a.ends_at > start) for start, end in ranges)),
    )
    found: list[tuple[int, HeldTime]] = []
    for row in await session.execute(stmt.order_by(a.starts_at)):
        for i, (start, end) in enumerate(ranges):
            if row.starts_at < end and row.ends_at > start:
                found.append((i, HeldTime(row.booking_id, row.worker_id, row.starts_at, row.ends_at)))
    return found


__all__ = [
    "BillableVisit",
    "Booking",
    "BookingAssignment",
    "FieldJob",
    "HeldTime",
    "VisitNotice",
    "completed_visits_before",
    "count_series_conflicts",
    "count_visits",
    "held_overlapping",
    "job_for_office",
    "own_field_job",
    "visit_notice",
    "visits_by_id",
    "visits_starting",
]
