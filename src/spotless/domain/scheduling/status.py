"""A booking's life cycle: the legal status changes (`states`), what each one stamps and
releases, and the event it announces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import states
from spotless.domain.scheduling.bookings import get_booking
from spotless.domain.scheduling.events import STATUS_EVENTS
from spotless.domain.scheduling.models import Booking, BookingAssignment
from spotless.lib.errors import Problem
from spotless.lib.events import emit


def illegal_transition(current: str, target: str) -> Problem:
    # `from` is a keyword in Python: the problem's extra members are passed as a mapping.
    extra: dict[str, Any] = {"from": current, "to": target}
    return Problem(
        409,
        "illegal-transition",
        "This status change is not allowed",
        f"A booking cannot go from {current} to {target}.",
        **extra,
    )


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
