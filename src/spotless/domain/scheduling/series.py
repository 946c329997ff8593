"""Recurring bookings: a rule in local wall-clock time, materialised as bookings up to a horizon
(`occurrences`). This module defines and reads series; `series_edits` changes their occurrences."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from sqlalchemy import Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import get_bookable_client
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import recurrence
from spotless.domain.scheduling.bookings import narrows_to_own, worker_id_for
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import BookingSeries, BookingSeriesWorker, SeriesConflict
from spotless.domain.scheduling.occurrences import Materialised, horizon_end, materialise, today_local
from spotless.domain.scheduling.pricing import default_params, params_json, price, pricing_frequency
from spotless.domain.scheduling.rules import resolve_workers
from spotless.domain.scheduling.schemas import SeriesConflictRead, SeriesCreate, SeriesRead
from spotless.domain.workforce.public import parse_clock
from spotless.lib.errors import FieldError, not_found
from spotless.lib.query import offset_page


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
) -> OffsetPagination[SeriesRead]:
    stmt = await _visible_to(session, principal, select(BookingSeries))
    if client_id:
        stmt = stmt.where(BookingSeries.client_id == client_id)
    if status:
        stmt = stmt.where(BookingSeries.status == status)
    return await offset_page(
        session,
        stmt,
        limit=limit,
        offset=offset,
        to=SeriesRead.from_model,
        order_by=(BookingSeries.created_at, BookingSeries.id),
    )


async def list_conflicts(
    session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, *, limit: int, offset: int
) -> OffsetPagination[SeriesConflictRead]:
    await get_series(session, series_id, principal=principal)
    return await offset_page(
        session,
        select(SeriesConflict).where(SeriesConflict.series_id == series_id),
        limit=limit,
        offset=offset,
        to=lambda row: SeriesConflictRead.from_model(row, ctx),
        order_by=(SeriesConflict.occurrence_date,),
    )


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
    address = await get_bookable_client(session, data.client_id, data.address_id)
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
        params=params_json(params),
        addon_ids=[str(a) for a in data.addon_ids],
        notes=data.notes,
        status="active",
        created_by=principal.user_id,
    )
    session.add(series)
    await session.flush()
    result = await materialise(session, ctx, series, principal, horizon_end(ctx, horizon_days))
    return series, result
