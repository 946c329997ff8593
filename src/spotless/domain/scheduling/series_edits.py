"""Changing a series' occurrences: one (`scope=this`) or this and all following.

"This and following" splits the series: the old one ends at the previous occurrence, a new one
starts at the chosen date with the new values, and the old series' un-started occurrences from
that date are replaced."""

from __future__ import annotations

from datetime import date, time
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.bookings import assignments_of
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking, BookingSeries, SeriesConflict
from spotless.domain.scheduling.occurrences import (
    Materialised,
    horizon_end,
    materialise,
    occurrence_start,
    placement_of,
    rule_of,
)
from spotless.domain.scheduling.placement import Placement, assign, move, place, unassign
from spotless.domain.scheduling.rules import resolve_workers
from spotless.domain.scheduling.schemas import OccurrenceCancel, OccurrenceEdit
from spotless.domain.scheduling.series import get_series
from spotless.domain.scheduling.status import set_status
from spotless.domain.workforce.public import parse_clock
from spotless.lib.errors import FieldError, Problem

UNSTARTED = ("pending", "confirmed")


def _check_occurrence(series: BookingSeries, d: date) -> None:
    if not rule_of(series).occurs_on(d):
        raise Problem(
            404,
            "not-found",
            "Not found",
            f"The series has no occurrence on {d.isoformat()}.",
            occurrence_date=d.isoformat(),
        )


async def _occurrence(session: AsyncSession, series_id: UUID, d: date) -> Booking | None:
    return await session.scalar(
        select(Booking).where(Booking.series_id == series_id, Booking.occurrence_date == d).with_for_update()
    )


async def edit_occurrence(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    series_id: UUID,
    d: date,
    data: OccurrenceEdit,
    horizon_days: int,
) -> tuple[BookingSeries, Materialised, UUID | None]:
    series = await get_series(session, series_id, for_update=True)
    _check_occurrence(series, d)
    if series.status == "cancelled":
        raise Problem(409, "series-cancelled", "The series is cancelled", "A cancelled series cannot be edited.")
    start_time = parse_clock(data.start_time, "start_time") if data.start_time else None
    if data.scope == "this":
        return series, await _edit_one(session, principal, ctx, series, d, data, start_time), None
    if data.move_to is not None:
        raise FieldError("move_to", "move_to applies to scope=this only")
    new_series = await split(session, principal, ctx, series, d, horizon_days, start_time=start_time, data=data)
    return new_series[0], new_series[1], series.id if new_series[0].id != series.id else None


async def _edit_one(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    series: BookingSeries,
    d: date,
    data: OccurrenceEdit,
    start_time: time | None,
) -> Materialised:
    booking = await _occurrence(session, series.id, d)
    target_day = data.move_to or d
    if booking is None:
        # Not materialised yet (beyond the horizon, or reported as a conflict): book it now with
        # the changes; a conflict is the caller's to see at once (409), not a report.
        await session.execute(
            delete(SeriesConflict).where(SeriesConflict.series_id == series.id, SeriesConflict.occurrence_date == d)
        )
        worker_ids = (
            await resolve_workers(session, data.worker_ids, None)
            if data.worker_ids is not None
            else list(series.worker_ids or [])
        )
        placement = placement_of(series, d, occurrence_start(series, target_day, start_time))
        placement = Placement(
            **{
                **placement.__dict__,
                "worker_ids": worker_ids,
                "duration_minutes": data.duration_minutes or series.duration_minutes,
                "notes": data.notes if data.notes is not None else series.notes,
            }
        )
        booking = await place(session, ctx, principal, placement, data.override)
        return Materialised(booking_ids=[booking.id])
    current_local = timeutil.local(booking.starts_at, ctx.tz)
    new_start = timeutil.to_utc(target_day, start_time or current_local.time().replace(tzinfo=None), ctx.tz)
    if new_start != booking.starts_at or data.duration_minutes:
        await move(session, ctx, principal, booking, new_start, data.override, minutes=data.duration_minutes)
    if data.worker_ids is not None:
        current = [a.worker_id for a in await assignments_of(session, booking.id)]
        wanted = list(dict.fromkeys(data.worker_ids))
        removed = [w for w in current if w not in wanted]
        if removed:
            await unassign(session, principal, booking.id, removed)
        if [w for w in wanted if w not in current]:
            await assign(session, principal, ctx, booking.id, wanted, data.override)
    if data.notes is not None:
        booking.notes = data.notes
    await session.flush()
    return Materialised(booking_ids=[booking.id])


async def _retire_from(session: AsyncSession, old: BookingSeries, d: date, new_series_id: UUID | None) -> None:
    """Remove the old series' un-started occurrences from `d` (they are re-created by the new
    series) and hand the others (cancelled, started, done) to the new series so its rule does not
    book those dates again."""
    await session.execute(
        delete(Booking).where(Booking.series_id == old.id, Booking.occurrence_date >= d, Booking.status.in_(UNSTARTED))
    )
    if new_series_id is not None:
        await session.execute(
            update(Booking)
            .where(Booking.series_id == old.id, Booking.occurrence_date >= d)
            .values(series_id=new_series_id)
        )
    await session.execute(
        delete(SeriesConflict).where(SeriesConflict.series_id == old.id, SeriesConflict.occurrence_date >= d)
    )


async def split(
    session: AsyncSession,
    principal: Principal,
    ctx: OrgContext,
    series: BookingSeries,
    d: date,
    horizon_days: int,
    *,
    start_time: time | None,
    data: OccurrenceEdit,
) -> tuple[BookingSeries, Materialised]:
    worker_ids = (
        await resolve_workers(session, data.worker_ids, None)
        if data.worker_ids is not None
        else list(series.worker_ids or [])
    )
    new = BookingSeries(
        org_id=ctx.org_id,
        client_id=series.client_id,
        address_id=series.address_id,
        service_id=series.service_id,
        team_id=series.team_id if data.worker_ids is None else None,
        worker_ids=worker_ids,
        frequency=series.frequency,
        interval=series.interval,
        # Keep the rule's day: the split date may be a clamped one (the 28th for a "31st" rule).
        day_of_month=series.day_of_month or (series.anchor_date.day if series.frequency == "monthly" else None),
        start_time=start_time or series.start_time,
        timezone=series.timezone,
        duration_minutes=data.duration_minutes or series.duration_minutes,
        anchor_date=d,
        until_date=series.until_date,
        params=dict(series.params or {}),
        addon_ids=list(series.addon_ids or []),
        notes=data.notes if data.notes is not None else series.notes,
        status="active",
        parent_series_id=series.id,
        created_by=principal.user_id,
    )
    session.add(new)
    await session.flush()
    await _end_before(series, d)
    await _retire_from(session, series, d, new.id)
    await session.flush()
    result = await materialise(session, ctx, new, principal, horizon_end(ctx, horizon_days))
    return new, result


async def _end_before(series: BookingSeries, d: date) -> None:
    previous = rule_of(series).last_before(d)
    if previous is None:
        # Split at the first occurrence: nothing of the old rule remains.
        series.status = "ended"
        series.until_date = series.anchor_date
        return
    series.until_date = previous
    if series.materialised_until is not None and series.materialised_until >= previous:
        # Nothing left to materialise; otherwise stay active until the materialiser reaches it.
        series.status = "ended"
        series.materialised_until = previous


async def cancel_occurrence(
    session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, d: date, data: OccurrenceCancel
) -> tuple[BookingSeries, list[UUID]]:
    series = await get_series(session, series_id, for_update=True)
    _check_occurrence(series, d)
    if data.scope == "this":
        booking = await _occurrence(session, series.id, d)
        if booking is None:
            # Not booked yet: keep a cancelled occurrence so the rule never books that date.
            await session.execute(
                delete(SeriesConflict).where(SeriesConflict.series_id == series.id, SeriesConflict.occurrence_date == d)
            )
            placement = placement_of(series, d, occurrence_start(series, d))
            booking = await place(
                session, ctx, principal, Placement(**{**placement.__dict__, "worker_ids": []}), announce=False
            )
        await set_status(session, booking, "cancelled", reason=data.reason)
        return series, [booking.id]
    return series, await cancel_following(session, series, d, data.reason)


async def cancel_following(session: AsyncSession, series: BookingSeries, d: date, reason: str) -> list[UUID]:
    """End the series before `d` and cancel its un-started occurrences from `d` on."""
    previous = rule_of(series).last_before(d)
    if previous is None:
        series.status = "cancelled"
    else:
        await _end_before(series, d)
    bookings = list(
        await session.scalars(
            select(Booking)
            .where(Booking.series_id == series.id, Booking.occurrence_date >= d, Booking.status.in_(UNSTARTED))
            .with_for_update()
        )
    )
    for booking in bookings:
        await set_status(session, booking, "cancelled", reason=reason)
    await session.execute(
        delete(SeriesConflict).where(SeriesConflict.series_id == series.id, SeriesConflict.occurrence_date >= d)
    )
    await session.flush()
    return [b.id for b in bookings]
