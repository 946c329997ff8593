"""When a client is archived, nobody should turn up at their door: scheduling closes their open
work. Their active series end (nothing more is materialised) and every visit not started yet, from
the day of the archive on, is cancelled with the reason "client archived", each announcing its
`BookingCancelled` like any other cancellation. Visits already started or done stay as history.

Runs as the `scheduling.close_client_work` subscriber of `clients.ClientArchived`: idempotent (a
redelivery finds nothing left open), and a client restored before it runs is left alone."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import client_archived_at
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.context import org_context
from spotless.domain.scheduling.models import Booking, BookingSeries
from spotless.domain.scheduling.series_edits import UNSTARTED, cancel_following
from spotless.domain.scheduling.status import set_status

REASON = "client archived"


async def close_client_work(session: AsyncSession, org_id: UUID, client_id: UUID, archived_at: datetime) -> list[UUID]:
    """Cancel the archived client's open work; returns the cancelled bookings' ids."""
    if await client_archived_at(session, client_id) is None:
        return []  # restored meanwhile: their work stands
    ctx = await org_context(session, org_id)
    day = timeutil.local_date(archived_at, ctx.tz)
    cancelled: list[UUID] = []
    series_rows = await session.scalars(
        select(BookingSeries)
        .where(BookingSeries.client_id == client_id, BookingSeries.status == "active")
        .order_by(BookingSeries.id)
        .with_for_update()
    )
    for series in list(series_rows):
        cancelled += await cancel_following(session, series, day, REASON)
    one_offs = await session.scalars(
        select(Booking)
        .where(Booking.client_id == client_id, Booking.status.in_(UNSTARTED), Booking.starts_at >= archived_at)
        .order_by(Booking.starts_at, Booking.id)
        .with_for_update()
    )
    for booking in list(one_offs):
        await set_status(session, booking, "cancelled", reason=REASON)
        cancelled.append(booking.id)
    return cancelled
