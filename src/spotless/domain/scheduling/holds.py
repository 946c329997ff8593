"""Holds: a series paused for a window (the client's vacation), and lifted early when they return.

Placing a hold cancels the series' visits not started yet in the window (each announcing its
`BookingCancelled`, so the cleaner's calendar and the client's reminders follow) and drops the
window's reported conflicts; the materialiser books nothing inside any hold. Lifting it early books
the freed dates again from today; a visit that was cancelled on its own before the hold stays
cancelled. The series row is locked for both, as for every series change."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.events import SeriesPaused, SeriesResumed
from spotless.domain.scheduling.models import Booking, BookingSeries, SeriesConflict, SeriesHold
from spotless.domain.scheduling.occurrences import Materialised, book_dates, rule_of, today_local
from spotless.domain.scheduling.schemas import SeriesHoldCreate
from spotless.domain.scheduling.series import get_series
from spotless.domain.scheduling.series_edits import UNSTARTED
from spotless.domain.scheduling.status import set_status
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.events import emit
from spotless.lib.query import flush_or_conflict

HOLD_REASON = "series paused"
MAX_HOLD_DAYS = 366  # longer is ending the series, not pausing it


def _not_active(series: BookingSeries) -> Problem:
    return Problem(
        409,
        "series-not-active",
        "The series is not active",
        f"This series is {series.status}; only an active series can be paused.",
        series_id=str(series.id),
    )


def _check_window(data: SeriesHoldCreate, today: date) -> None:
    if data.starts_on < today:
        raise FieldError("starts_on", "must be today or later (in the organisation's time zone)")
    if data.ends_on < data.starts_on:
        raise FieldError("ends_on", "must be on or after starts_on")
    if (data.ends_on - data.starts_on).days >= MAX_HOLD_DAYS:
        raise FieldError("ends_on", f"a hold lasts at most {MAX_HOLD_DAYS} days; end the series instead")


async def list_holds(session: AsyncSession, principal: Principal, series_id: UUID) -> list[SeriesHold]:
    await get_series(session, series_id, principal=principal)
    rows = await session.scalars(
        select(SeriesHold).where(SeriesHold.series_id == series_id).order_by(SeriesHold.starts_on)
    )
    return list(rows)


async def place_hold(
    session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, data: SeriesHoldCreate
) -> tuple[SeriesHold, list[UUID]]:
    series = await get_series(session, series_id, for_update=True, principal=principal)
    if series.status != "active":
        raise _not_active(series)
    _check_window(data, today_local(ctx))
    hold = SeriesHold(
        org_id=series.org_id,
        series_id=series.id,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        reason=data.reason,
        created_by=principal.user_id,
    )
    session.add(hold)
    await flush_or_conflict(session, "hold-overlaps", "The series already has a hold overlapping these dates.")
    visits = list(
        await session.scalars(
            select(Booking)
            .where(
                Booking.series_id == series.id,
                Booking.occurrence_date.between(data.starts_on, data.ends_on),
                Booking.status.in_(UNSTARTED),
            )
            .order_by(Booking.occurrence_date)
            .with_for_update()
        )
    )
    reason = f"{HOLD_REASON}: {data.reason}" if data.reason else HOLD_REASON
    for booking in visits:
        await set_status(session, booking, "cancelled", reason=reason)
    await session.execute(
        delete(SeriesConflict).where(
            SeriesConflict.series_id == series.id,
            SeriesConflict.occurrence_date.between(data.starts_on, data.ends_on),
        )
    )
    emit(
        session,
        SeriesPaused(
            org_id=series.org_id,
            series_id=series.id,
            hold_id=hold.id,
            starts_on=data.starts_on,
            ends_on=data.ends_on,
        ),
    )
    return hold, [b.id for b in visits]


async def lift_hold(
    session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, hold_id: UUID
) -> tuple[SeriesHold | None, Materialised]:
    """End a hold now: the part already past stays as history; the rest is freed and booked."""
    series = await get_series(session, series_id, for_update=True, principal=principal)
    hold = await session.scalar(
        select(SeriesHold).where(SeriesHold.id == hold_id, SeriesHold.series_id == series.id).with_for_update()
    )
    if hold is None:
        raise not_found("hold")
    today = today_local(ctx)
    if hold.ends_on < today:
        raise Problem(409, "hold-over", "The hold is over", "This hold has already ended; nothing is left to lift.")
    freed_from, freed_to = max(hold.starts_on, today), hold.ends_on
    kept: SeriesHold | None = hold
    if hold.starts_on >= today:
        await session.delete(hold)
        kept = None
    else:
        hold.ends_on = today - timedelta(days=1)
    await session.flush()
    out = Materialised()
    last = min(d for d in (freed_to, series.until_date, series.materialised_until) if d is not None)
    if series.status == "active" and series.materialised_until is not None and last >= freed_from:
        dates = rule_of(series).between(max(freed_from, series.anchor_date), last)
        todo = await _rebookable(session, series.id, dates)
        if todo:
            await book_dates(session, ctx, series, principal, todo, out)
    emit(session, SeriesResumed(org_id=series.org_id, series_id=series.id, hold_id=hold_id, resumed_on=freed_from))
    return kept, out


async def _rebookable(session: AsyncSession, series_id: UUID, dates: list[date]) -> list[date]:
    """Dates with no live visit and no reported conflict whose only visits were cancelled by a hold
    (a visit cancelled on its own before the hold stays cancelled)."""
    if not dates:
        return []
    rows = await session.execute(
        select(Booking.occurrence_date, Booking.status, Booking.cancel_reason).where(
            and_(Booking.series_id == series_id, Booking.occurrence_date.in_(dates))
        )
    )
    blocked = {d for d, status, reason in rows if status != "cancelled" or not (reason or "").startswith(HOLD_REASON)}
    conflicts = await session.scalars(
        select(SeriesConflict.occurrence_date).where(
            SeriesConflict.series_id == series_id, SeriesConflict.occurrence_date.in_(dates)
        )
    )
    blocked |= set(conflicts)
    return [d for d in dates if d not in blocked]
