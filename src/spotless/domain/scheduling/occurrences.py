"""Turning a series' rule into bookings: the dates it falls on, and materialising them up to a
horizon.

- Occurrences are keyed by (series_id, occurrence_date): the unique constraint makes every
  materialisation idempotent, and an occurrence edited or cancelled on its own (`scope=this`)
  keeps its key, so re-running the rule never brings it back.
- An occurrence that cannot be booked (worker already booked, outside hours, time off, inactive
  worker) becomes a `series_conflict` row, returned to the caller and listed at
  /v1/series/{id}/conflicts: reported, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import PricingParams, Quote
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import recurrence, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking, BookingSeries, SeriesConflict, SeriesHold
from spotless.domain.scheduling.placement import Placement, place
from spotless.domain.scheduling.pricing import price, pricing_frequency
from spotless.domain.scheduling.rules import SchedulingConflict
from spotless.domain.workforce.public import get_active_workers
from spotless.lib.errors import Problem


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


def horizon_end(ctx: OrgContext, horizon_days: int, now: datetime | None = None) -> date:
    return today_local(ctx, now) + timedelta(days=horizon_days)


def placement_of(series: BookingSeries, d: date, start: datetime) -> Placement:
    """The booking the series' occurrence on `d` is, starting at `start`."""
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


@dataclass
class Materialised:
    booking_ids: list[UUID] = field(default_factory=list)
    conflicts: list[SeriesConflict] = field(default_factory=list)


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


async def held_dates(session: AsyncSession, series_id: UUID, start: date, end: date) -> set[date]:
    """The dates from `start` through `end` that a hold of the series covers."""
    rows = await session.execute(
        select(SeriesHold.starts_on, SeriesHold.ends_on).where(
            SeriesHold.series_id == series_id, SeriesHold.starts_on <= end, SeriesHold.ends_on >= start
        )
    )
    covered: set[date] = set()
    for starts_on, ends_on in rows:
        day = max(starts_on, start)
        while day <= min(ends_on, end):
            covered.add(day)
            day += timedelta(days=1)
    return covered


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
    # A date inside a hold is not due: the series is paused there (holds.py).
    return {d for d in booked if d} | set(reported) | await held_dates(session, series_id, start, end)


async def _inactive_worker(session: AsyncSession, worker_ids: Sequence[UUID]) -> UUID | None:
    try:
        await get_active_workers(session, worker_ids)
    except Problem as exc:
        raw = (exc.extra or {}).get("worker_id") if isinstance(exc.extra, dict) else None
        return UUID(raw) if raw else (worker_ids[0] if worker_ids else None)
    return None


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
            await book_dates(session, ctx, series, principal, todo, out)
    # The marker advances even when nothing was due (anchored past the horizon, ended before
    # today): occurrences up to `last` are all handled, so the series leaves the due set instead
    # of being re-read by every run.
    series.materialised_until = max(series.materialised_until or last, last)
    await session.flush()
    return out


async def book_dates(
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
                    booking = await place(session, ctx, principal, placement_of(series, d, start), quote=quote)
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
