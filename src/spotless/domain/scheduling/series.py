"""Recurring bookings: a rule in local wall-clock time, materialised as bookings up to a horizon.

- Occurrences are keyed by (series_id, occurrence_date): the unique constraint makes every
  materialisation idempotent, and an occurrence edited or cancelled on its own (`scope=this`)
  keeps its key, so re-running the rule never brings it back.
- An occurrence that cannot be booked (worker already booked, outside hours, time off, inactive
  worker) becomes a `series_conflict` row, returned to the caller and listed at
  /v1/series/{id}/conflicts: reported, never dropped.
- "This and following" splits the series: the old one ends at the previous occurrence, a new one
  starts at the chosen date with the new values, and the old series' un-started occurrences from
  that date are replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, false, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.pricing import PricingParams, Quote
from spotless.domain.clients import services as clients
from spotless.domain.identity.principal import Principal
from spotless.domain.scheduling import recurrence, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking, BookingSeries, BookingSeriesWorker, SeriesConflict
from spotless.domain.scheduling.schemas import (
    MaterialiseErrorOut,
    OccurrenceCancel,
    OccurrenceEdit,
    SeriesConflictOut,
    SeriesCreate,
    SeriesOut,
)
from spotless.domain.scheduling.services import (
    Placement,
    SchedulingConflict,
    _assignments,
    assign,
    default_params,
    move,
    narrows_to_own,
    place,
    price,
    resolve_workers,
    set_status,
    unassign,
    worker_id_for,
)
from spotless.domain.workforce import services as workforce
from spotless.domain.workforce.hours import parse_clock
from spotless.lib.errors import FieldError, Problem, not_found

logger = logging.getLogger("spotless.scheduling.series")

UNSTARTED = ("pending", "confirmed")


def pricing_frequency(frequency: str, interval: int) -> str:
    """The catalogue's frequency discount that matches the rule (others are priced as one-offs)."""
    if frequency == "weekly" and interval in (1, 2):
        return "weekly" if interval == 1 else "biweekly"
    if frequency == "monthly" and interval == 1:
        return "monthly"
    return "once"


def rule_of(series: BookingSeries) -> recurrence.Rule:
    return recurrence.Rule(
        frequency=series.frequency,  # type: ignore[arg-type]
        anchor=series.anchor_date,
        interval=series.interval,
        day_of_month=series.day_of_month,
        until=series.until_date,
    )


def occurrence_start(series: BookingSeries, d: date, start_time: time | None = None) -> datetime:
    return timeutil.to_utc(d, start_time or series.start_time, timeutil.zone(series.timezone))


def today_local(ctx: OrgContext, now: datetime | None = None) -> date:
    return timeutil.local_date(now or datetime.now(UTC), ctx.tz)


def series_out(series: BookingSeries) -> SeriesOut:
    return SeriesOut(
        id=series.id,
        client_id=series.client_id,
        address_id=series.address_id,
        service_id=series.service_id,
        frequency=series.frequency,
        interval=series.interval,
        start_date=series.anchor_date,
        start_time=series.start_time.strftime("%H:%M"),
        timezone=series.timezone,
        worker_ids=list(series.worker_ids or []),
        status=series.status,
        params=dict(series.params or {}),
        addon_ids=[UUID(a) for a in series.addon_ids or []],
        created_at=series.created_at,
        day_of_month=series.day_of_month,
        until=series.until_date,
        duration_minutes=series.duration_minutes,
        team_id=series.team_id,
        notes=series.notes,
        materialised_until=series.materialised_until,
        parent_series_id=series.parent_series_id,
        materialise_error=materialise_error_out(series),
    )


def materialise_error_out(series: BookingSeries) -> MaterialiseErrorOut | None:
    """Why the periodic materialiser last failed on this series (stored as "reason: detail")."""
    if series.materialise_error is None or series.materialise_failed_at is None:
        return None
    reason, _, detail = series.materialise_error.partition(": ")
    return MaterialiseErrorOut(reason=reason, detail=detail or reason, failed_at=series.materialise_failed_at)


def conflict_out(row: SeriesConflict, ctx: OrgContext) -> SeriesConflictOut:
    return SeriesConflictOut(
        id=row.id,
        series_id=row.series_id,
        occurrence_date=row.occurrence_date,
        starts_at=timeutil.local(row.starts_at, ctx.tz),
        ends_at=timeutil.local(row.ends_at, ctx.tz),
        reason=row.reason,
        worker_id=row.worker_id,
        conflicting_booking_id=row.conflicting_booking_id,
        detail=row.detail,
    )


@dataclass
class Materialised:
    booking_ids: list[UUID] = field(default_factory=list)
    conflicts: list[SeriesConflict] = field(default_factory=list)


async def get_series(
    session: AsyncSession, series_id: UUID, *, for_update: bool = False, principal: Principal | None = None
) -> BookingSeries:
    """The series; with `principal`, only if they may see it (cleaners: series they are on), else 404."""
    stmt = select(BookingSeries).where(BookingSeries.id == series_id)
    if principal is not None:
        stmt = await _visible_to(session, principal, stmt)
    if for_update:
        stmt = stmt.with_for_update()
    series = await session.scalar(stmt)
    if series is None:
        raise not_found("series")
    return series


async def _visible_to(session: AsyncSession, principal: Principal, stmt: Select[Any]) -> Select[Any]:
    """Narrow a series query to what the caller may see: a cleaner sees the series they are
    assigned to (a team series lists its workers too), nothing when they have no profile."""
    if not narrows_to_own(principal):
        return stmt
    own = await worker_id_for(session, principal)
    if own is None:
        return stmt.where(false())
    return stmt.where(BookingSeries.cleaners.any(BookingSeriesWorker.worker_id == own))


async def list_series(
    session: AsyncSession,
    principal: Principal,
    *,
    client_id: UUID | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[BookingSeries], int]:
    from sqlalchemy import func

    stmt = await _visible_to(session, principal, select(BookingSeries))
    if client_id:
        stmt = stmt.where(BookingSeries.client_id == client_id)
    if status:
        stmt = stmt.where(BookingSeries.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(stmt.order_by(BookingSeries.created_at, BookingSeries.id).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def list_conflicts(
    session: AsyncSession, principal: Principal, series_id: UUID, *, limit: int, offset: int
) -> tuple[list[SeriesConflict], int]:
    from sqlalchemy import func

    await get_series(session, series_id, principal=principal)
    stmt = select(SeriesConflict).where(SeriesConflict.series_id == series_id)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(stmt.order_by(SeriesConflict.occurrence_date).limit(limit).offset(offset))
    return list(rows), int(total or 0)


# --- materialising ----------------------------------------------------------------------------


async def _record_conflict(
    session: AsyncSession,
    ctx: OrgContext,
    series: BookingSeries,
    d: date,
    start: datetime,
    end: datetime,
    reason: str,
    worker_id: UUID | None,
    conflicting: UUID | None,
    detail: str,
) -> None:
    # Column defaults (id, timestamps) apply to Core inserts too; a second report of the same
    # occurrence (a concurrent run) is a no-op.
    values = {
        "org_id": ctx.org_id,
        "series_id": series.id,
        "occurrence_date": d,
        "starts_at": start,
        "ends_at": end,
        "reason": reason,
        "worker_id": worker_id,
        "conflicting_booking_id": conflicting,
        "detail": detail,
    }
    await session.execute(
        insert(SeriesConflict)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_series_conflict_series_id_occurrence_date")
    )


async def _taken_dates(session: AsyncSession, series_id: UUID, start: date, end: date) -> set[date]:
    booked = await session.scalars(
        select(Booking.occurrence_date).where(
            Booking.series_id == series_id, Booking.occurrence_date >= start, Booking.occurrence_date <= end
        )
    )
    reported = await session.scalars(
        select(SeriesConflict.occurrence_date).where(
            SeriesConflict.series_id == series_id,
            SeriesConflict.occurrence_date >= start,
            SeriesConflict.occurrence_date <= end,
        )
    )
    return {d for d in booked if d} | set(reported)


async def _inactive_worker(session: AsyncSession, worker_ids: Sequence[UUID]) -> UUID | None:
    try:
        await workforce.get_active_workers(session, worker_ids)
    except Problem as exc:
        raw = (exc.extra or {}).get("worker_id") if isinstance(exc.extra, dict) else None
        return UUID(raw) if raw else (worker_ids[0] if worker_ids else None)
    return None


def _placement(series: BookingSeries, d: date, start: datetime) -> Placement:
    return Placement(
        client_id=series.client_id,
        address_id=series.address_id,
        service_id=series.service_id,
        starts_at=start,
        worker_ids=list(series.worker_ids or []),
        params=PricingParams(**(series.params or {})),
        addon_ids=[UUID(a) for a in series.addon_ids or []],
        frequency=pricing_frequency(series.frequency, series.interval),
        team_id=series.team_id,
        notes=series.notes,
        duration_minutes=series.duration_minutes,
        series_id=series.id,
        occurrence_date=d,
    )


async def _quote(session: AsyncSession, ctx: OrgContext, series: BookingSeries) -> Quote:
    return await price(
        session,
        ctx,
        series.service_id,
        PricingParams(**(series.params or {})),
        [UUID(a) for a in series.addon_ids or []],
        pricing_frequency(series.frequency, series.interval),
    )


async def materialise(
    session: AsyncSession,
    ctx: OrgContext,
    series: BookingSeries,
    principal: Principal | None,
    through: date,
    *,
    now: datetime | None = None,
) -> Materialised:
    """Book every occurrence from the last materialised date (or today) through `through`.
    Idempotent: occurrences already booked or reported are skipped. Call with the series locked."""
    out = Materialised()
    if series.status != "active":
        return out
    today = today_local(ctx, now)
    first = series.anchor_date
    if series.materialised_until is not None:
        first = max(first, series.materialised_until + timedelta(days=1))
    first = max(first, today)
    last = min(through, series.until_date) if series.until_date else through
    dates = rule_of(series).between(first, last) if last >= first else []
    if dates:
        taken = await _taken_dates(session, series.id, dates[0], dates[-1])
        todo = [d for d in dates if d not in taken]
        if todo:
            await _book_dates(session, ctx, series, principal, todo, out)
    # The marker advances even when nothing was due (anchored past the horizon, ended before
    # today): occurrences up to `last` are all handled, so the series leaves the due set instead
    # of being re-read by every run.
    series.materialised_until = max(series.materialised_until or last, last)
    await session.flush()
    return out


async def _book_dates(
    session: AsyncSession,
    ctx: OrgContext,
    series: BookingSeries,
    principal: Principal | None,
    dates: Sequence[date],
    out: Materialised,
) -> None:
    quote = await _quote(session, ctx, series)
    minutes = series.duration_minutes or quote.estimated_minutes
    inactive = await _inactive_worker(session, list(series.worker_ids or []))
    for d in dates:
        start = occurrence_start(series, d)
        end = start + timedelta(minutes=minutes)
        worker: UUID | None
        if inactive is not None:
            reason, worker, other, detail = "worker-inactive", inactive, None, "The worker is no longer active."
        else:
            try:
                async with session.begin_nested():
                    booking = await place(session, ctx, principal, _placement(series, d, start), quote=quote)
                out.booking_ids.append(booking.id)
                continue
            except SchedulingConflict as exc:
                reason, worker, other, detail = exc.reason, exc.worker_id, exc.conflicting_booking_id, str(exc.detail)
        await _record_conflict(session, ctx, series, d, start, end, reason, worker, other, detail)
    if dates:
        rows = await session.scalars(
            select(SeriesConflict)
            .where(SeriesConflict.series_id == series.id, SeriesConflict.occurrence_date.in_(list(dates)))
            .order_by(SeriesConflict.occurrence_date)
        )
        out.conflicts.extend(rows)


def horizon_end(ctx: OrgContext, horizon_days: int, now: datetime | None = None) -> date:
    return today_local(ctx, now) + timedelta(days=horizon_days)


# --- creating ---------------------------------------------------------------------------------


def _rule_or_400(**kwargs: Any) -> recurrence.Rule:
    try:
        return recurrence.Rule(**kwargs)
    except ValueError as exc:
        raise FieldError("until" if "until" in str(exc) else "frequency", str(exc)) from None


async def create_series(
    session: AsyncSession, principal: Principal, ctx: OrgContext, data: SeriesCreate, horizon_days: int
) -> tuple[BookingSeries, Materialised]:
    start_time = parse_clock(data.start_time, "start_time")
    if data.until is not None and data.count is not None:
        raise FieldError("count", "give either until or count, not both")
    if data.frequency == "weekly" and data.day_of_month is not None:
        raise FieldError("day_of_month", "day_of_month applies to monthly series only")
    today = today_local(ctx)
    if data.start_date < today:
        raise FieldError("start_date", "start_date must be today or later")
    rule = _rule_or_400(
        frequency=data.frequency,
        anchor=data.start_date,
        interval=data.interval,
        day_of_month=data.day_of_month,
        until=data.until,
    )
    until = rule.nth(data.count) if data.count else data.until
    _client, address = await clients.get_bookable_client(session, data.client_id, data.address_id)
    worker_ids = await resolve_workers(session, data.worker_ids, data.team_id)
    params = default_params(address, data.params)
    # Validates service, add-ons and parameters before anything is written.
    await price(session, ctx, data.service_id, params, data.addon_ids, pricing_frequency(data.frequency, data.interval))
    series = BookingSeries(
        org_id=ctx.org_id,
        client_id=data.client_id,
        address_id=data.address_id,
        service_id=data.service_id,
        team_id=data.team_id,
        worker_ids=worker_ids,
        frequency=data.frequency,
        interval=data.interval,
        day_of_month=data.day_of_month if data.frequency == "monthly" else None,
        start_time=start_time,
        timezone=ctx.tz_name,
        duration_minutes=data.duration_minutes,
        anchor_date=data.start_date,
        until_date=until,
        params=_params_json(params),
        addon_ids=[str(a) for a in data.addon_ids],
        notes=data.notes,
        status="active",
        created_by=principal.user_id,
    )
    session.add(series)
    await session.flush()
    result = await materialise(session, ctx, series, principal, horizon_end(ctx, horizon_days))
    return series, result


def _params_json(params: PricingParams) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(params)  # type: ignore[no-any-return]


# --- editing one occurrence or this-and-following ---------------------------------------------


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
        placement = _placement(series, d, occurrence_start(series, target_day, start_time))
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
        current = [a.worker_id for a in await _assignments(session, booking.id)]
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
            placement = _placement(series, d, occurrence_start(series, d))
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
