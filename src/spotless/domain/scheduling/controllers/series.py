"""/v1/series: recurring bookings, their conflicts, and edits of their occurrences."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import OrgProfile, Principal
from spotless.domain.scheduling import holds, series_edits
from spotless.domain.scheduling import series as series_service
from spotless.domain.scheduling.context import OrgContext, scheduling_context
from spotless.domain.scheduling.controllers.common import CONTEXT, EDIT, VIEW, IdempotencyKey
from spotless.domain.scheduling.models import BookingSeries
from spotless.domain.scheduling.occurrences import Materialised
from spotless.domain.scheduling.schemas import (
    OccurrenceCancel,
    OccurrenceEdit,
    SeriesConflictRead,
    SeriesCreate,
    SeriesHoldCreate,
    SeriesHoldLifted,
    SeriesHoldRead,
    SeriesHoldResult,
    SeriesRead,
    SeriesResult,
)
from spotless.lib.errors import problems
from spotless.lib.idempotency import idempotent
from spotless.lib.schema import Day, Limit, Offset
from spotless.settings import Settings


def _result(ctx: OrgContext, found: BookingSeries, result: Materialised, previous: UUID | None = None) -> SeriesResult:
    return SeriesResult(
        series=SeriesRead.from_model(found),
        booking_ids=result.booking_ids,
        conflicts=[SeriesConflictRead.from_model(c, ctx) for c in result.conflicts],
        previous_series_id=previous,
    )


class SeriesController(Controller):
    path = "/v1/series"
    tags = ["recurring"]
    dependencies = {**CONTEXT}

    @post(
        operation_id="createSeries",
        opt=EDIT,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="Create a recurring booking; occurrences up to the horizon are booked now and any that "
        "cannot be are returned in `conflicts`. Send an Idempotency-Key.",
    )
    async def create_series(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        org: OrgProfile,
        settings: Settings,
        data: SeriesCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SeriesResult]:
        async def produce() -> SeriesResult:
            # Read inside the idempotent section, as before: a replay reads nothing more.
            ctx = await scheduling_context(db_session, org)
            found, result = await series_service.create_series(
                db_session, principal, ctx, data, settings.scheduling.horizon_days
            )
            return _result(ctx, found, result)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @get(
        operation_id="listSeries",
        opt=VIEW,
        responses=problems(400),
        summary="Recurring bookings (cleaners see the series they are assigned to)",
    )
    async def list_series(
        self,
        db_session: AsyncSession,
        principal: Principal,
        client_id: UUID | None = None,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[SeriesRead]:
        return await series_service.list_series(
            db_session, principal, client_id=client_id, status=status, limit=limit, offset=offset
        )

    @get(
        "/{series_id:uuid}",
        operation_id="getSeries",
        opt=VIEW,
        responses=problems(404),
        summary="One series (404 to a cleaner not assigned to it)",
    )
    async def get_series(self, db_session: AsyncSession, principal: Principal, series_id: UUID) -> SeriesRead:
        return SeriesRead.from_model(await series_service.get_series(db_session, series_id, principal=principal))

    @get(
        "/{series_id:uuid}/conflicts",
        operation_id="listSeriesConflicts",
        opt=VIEW,
        responses=problems(404),
        summary="Occurrences that could not be booked (double booking, hours, time off, inactive worker)",
    )
    async def list_conflicts(
        self,
        db_session: AsyncSession,
        principal: Principal,
        ctx: OrgContext,
        series_id: UUID,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[SeriesConflictRead]:
        return await series_service.list_conflicts(db_session, principal, ctx, series_id, limit=limit, offset=offset)

    @patch(
        "/{series_id:uuid}/occurrences/{occurrence_date:date}",
        operation_id="editSeriesOccurrence",
        opt=EDIT,
        responses=problems(400, 404, 409),
        summary="Edit one occurrence (scope=this) or this and all following (scope=following: splits the series)",
    )
    async def edit_occurrence(
        self,
        db_session: AsyncSession,
        principal: Principal,
        ctx: OrgContext,
        settings: Settings,
        series_id: UUID,
        occurrence_date: Day,
        data: OccurrenceEdit,
    ) -> SeriesResult:
        found, result, previous = await series_edits.edit_occurrence(
            db_session, principal, ctx, series_id, occurrence_date, data, settings.scheduling.horizon_days
        )
        return _result(ctx, found, result, previous)

    @post(
        "/{series_id:uuid}/occurrences/{occurrence_date:date}/cancel",
        operation_id="cancelSeriesOccurrence",
        opt=EDIT,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Cancel one occurrence (scope=this) or this and all following (scope=following)",
    )
    async def cancel_occurrence(
        self,
        db_session: AsyncSession,
        principal: Principal,
        ctx: OrgContext,
        series_id: UUID,
        occurrence_date: Day,
        data: OccurrenceCancel,
    ) -> SeriesResult:
        found, cancelled = await series_edits.cancel_occurrence(
            db_session, principal, ctx, series_id, occurrence_date, data
        )
        return SeriesResult(series=SeriesRead.from_model(found), booking_ids=cancelled, conflicts=[])

    @post(
        "/{series_id:uuid}/holds",
        operation_id="pauseSeries",
        opt=EDIT,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="Pause the series for a window (a vacation hold): its visits in the window are cancelled "
        "and none is booked there until the hold ends or is lifted",
    )
    async def place_hold(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, data: SeriesHoldCreate
    ) -> SeriesHoldResult:
        hold, cancelled = await holds.place_hold(db_session, principal, ctx, series_id, data)
        return SeriesHoldResult(hold=SeriesHoldRead.from_model(hold), cancelled_booking_ids=cancelled)

    @get(
        "/{series_id:uuid}/holds",
        operation_id="listSeriesHolds",
        opt=VIEW,
        responses=problems(404),
        summary="The series' holds, past and planned",
    )
    async def list_holds(self, db_session: AsyncSession, principal: Principal, series_id: UUID) -> list[SeriesHoldRead]:
        return [SeriesHoldRead.from_model(h) for h in await holds.list_holds(db_session, principal, series_id)]

    @post(
        "/{series_id:uuid}/holds/{hold_id:uuid}/lift",
        operation_id="liftSeriesHold",
        opt=EDIT,
        status_code=200,
        responses=problems(404, 409),
        summary="End a hold now (the client is back early): the freed dates from today are booked again",
    )
    async def lift_hold(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, series_id: UUID, hold_id: UUID
    ) -> SeriesHoldLifted:
        kept, result = await holds.lift_hold(db_session, principal, ctx, series_id, hold_id)
        return SeriesHoldLifted(
            hold=SeriesHoldRead.from_model(kept) if kept else None,
            booking_ids=result.booking_ids,
            conflicts=[SeriesConflictRead.from_model(c, ctx) for c in result.conflicts],
        )
