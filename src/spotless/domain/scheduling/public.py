"""What other contexts may use of scheduling: its events (`events.py`), and the completed visits
billing invoices (read only: the booking's price snapshot, never re-priced)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.scheduling.models import Booking


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


__all__ = ["BillableVisit", "Booking", "completed_visits_before", "visits_by_id"]
