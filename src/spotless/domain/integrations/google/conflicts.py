"""Conflicts for dispatch: visits a synced busy block overlaps. A row is written when the sync finds
the overlap; the list shows those still true (the block still overlapping the visit's job time and
the visit still holding the cleaner), so a visit moved or reassigned drops out by itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from advanced_alchemy.service.pagination import OffsetPagination
from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.google.models import GcalConflict
from spotless.domain.integrations.google.schemas import CalendarConflictRead
from spotless.domain.scheduling.public import BookingAssignment
from spotless.lib.query import offset_page


async def list_conflicts(
    session: AsyncSession, *, limit: int, offset: int, since: datetime | None = None
) -> OffsetPagination[CalendarConflictRead]:
    a = BookingAssignment
    c = GcalConflict
    stmt = select(
        c.id, c.booking_id, c.worker_id, a.starts_at, a.ends_at, c.busy_starts_at, c.busy_ends_at, c.created_at
    )
    stmt = stmt.join(
        a,
        and_(
            a.booking_id == c.booking_id,
            a.worker_id == c.worker_id,
            a.active,
            a.starts_at < c.busy_ends_at,
            a.ends_at > c.busy_starts_at,
        ),
    )
    if since is not None:
        stmt = stmt.where(a.ends_at > since)
    return await offset_page(
        session,
        cast(Select[Any], stmt),
        limit=limit,
        offset=offset,
        to=lambda r: CalendarConflictRead(
            id=r[0],
            booking_id=r[1],
            worker_id=r[2],
            booking_starts_at=r[3],
            booking_ends_at=r[4],
            busy_starts_at=r[5],
            busy_ends_at=r[6],
            detected_at=r[7],
        ),
        order_by=(a.starts_at, c.id),
    )
