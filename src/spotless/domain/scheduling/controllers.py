"""/v1/bookings, /v1/availability, /v1/series, /v1/worker/jobs and /v1/scheduling/settings.
Thin: parse, call the service, shape the answer. Instants are answered in the organisation's zone."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.pricing import PricingParams
from spotless.domain.identity.principal import Principal
from spotless.domain.scheduling import availability as availability_service
from spotless.domain.scheduling import field, services, timeutil
from spotless.domain.scheduling import series as series_service
from spotless.domain.scheduling.context import get_settings, org_context, update_settings
from spotless.domain.scheduling.schemas import (
    Assign,
    Availability,
    BookingCreate,
    BookingOut,
    Cancel,
    FieldAction,
    Finish,
    OccurrenceCancel,
    OccurrenceEdit,
    Reschedule,
    SchedulingSettingsOut,
    SchedulingSettingsUpdate,
    SeriesConflictOut,
    SeriesCreate,
    SeriesOut,
    SeriesResult,
    Unassign,
    WorkerJob,
)
from spotless.lib.bounds import Day
from spotless.lib.errors import problems
from spotless.lib.idempotency import idempotent
from spotless.lib.pagination import DEFAULT_LIMIT, Cursor, CursorPage, Limit, Offset
from spotless.settings import Settings

VIEW = {"permission": "bookings.view"}
EDIT = {"permission": "bookings.edit"}
ASSIGN = {"permission": "bookings.assign"}
STATUS = {"permission": "bookings.status"}
# Read by spotless.lib.idempotency; declared so the API docs show it.
IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, description="Retry-safe creation: same key + body replays"),
]


def _settings(state: State) -> Settings:
    return state["settings"]  # type: ignore[no-any-return]


async def _answer(
    session: AsyncSession, principal: Principal, booking_id: UUID, worker_ids: list[UUID] | None = None
) -> BookingOut:
    ctx = await org_context(session, principal.org_id)
    booking = await services.get_booking(session, principal, booking_id)
    if worker_ids is None:
        worker_ids = (await services.workers_of(session, [booking.id]))[booking.id]
    return services.to_out(booking, worker_ids, ctx)


class BookingController(Controller):
    path = "/v1/bookings"
    tags = ["bookings"]

    @post(
        operation_id="createBooking",
        opt=EDIT,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="Book a visit: priced and timed from the service, checked against hours, time off and "
        "other bookings (409 booking-conflict names the booking in the way). Send an Idempotency-Key.",
    )
    async def create_booking(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        data: BookingCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BookingOut]:
        async def produce() -> BookingOut:
            ctx = await org_context(db_session, principal.org_id)
            booking, worker_ids = await services.create_booking(db_session, principal, ctx, data)
            return services.to_out(booking, worker_ids, ctx)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @get(
        operation_id="listBookings",
        opt=VIEW,
        responses=problems(400),
        summary="List bookings by start time, filtered by local day range, status, worker, client or series "
        "(cleaners see their own); page with `cursor` = the previous page's `next_cursor`",
    )
    async def list_bookings(
        self,
        db_session: AsyncSession,
        principal: Principal,
        date_from: Annotated[Day | None, Parameter(description="first local day (organisation's zone)")] = None,
        date_to: Annotated[Day | None, Parameter(description="last local day, inclusive")] = None,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        worker_id: UUID | None = None,
        client_id: UUID | None = None,
        series_id: UUID | None = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CursorPage[BookingOut]:
        ctx = await org_context(db_session, principal.org_id)
        filters = services.BookingFilters(
            date_from=date_from,
            date_to=date_to,
            status=status,
            worker_id=worker_id,
            client_id=client_id,
            series_id=series_id,
        )
        rows, next_cursor, has_more, workers = await services.list_bookings(
            db_session, principal, ctx, filters, limit=limit, cursor=cursor
        )
        return CursorPage(
            items=[services.to_out(b, workers[b.id], ctx) for b in rows],
            next_cursor=next_cursor,
            has_more=has_more,
            limit=limit,
        )

    @get("/{booking_id:uuid}", operation_id="getBooking", opt=VIEW, responses=problems(404), summary="One booking")
    async def get_booking(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> BookingOut:
        return await _answer(db_session, principal, booking_id)

    @post(
        "/{booking_id:uuid}/confirm",
        operation_id="confirmBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(404, 409),
        summary="pending -> confirmed",
    )
    async def confirm(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> BookingOut:
        await services.transition(db_session, principal, booking_id, "confirmed")
        return await _answer(db_session, principal, booking_id)

    @post(
        "/{booking_id:uuid}/reschedule",
        operation_id="rescheduleBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Move a pending or confirmed booking (same duration); workers stay, re-checked",
    )
    async def reschedule(
        self, db_session: AsyncSession, principal: Principal, booking_id: UUID, data: Reschedule
    ) -> BookingOut:
        ctx = await org_context(db_session, principal.org_id)
        booking, worker_ids = await services.reschedule(
            db_session, principal, ctx, booking_id, data.starts_at, data.override
        )
        return services.to_out(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/assign",
        operation_id="assignBooking",
        opt=ASSIGN,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Add workers to a booking",
    )
    async def assign(
        self, db_session: AsyncSession, principal: Principal, booking_id: UUID, data: Assign
    ) -> BookingOut:
        ctx = await org_context(db_session, principal.org_id)
        booking, worker_ids = await services.assign(
            db_session, principal, ctx, booking_id, data.worker_ids, data.override
        )
        return services.to_out(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/unassign",
        operation_id="unassignBooking",
        opt=ASSIGN,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Take workers off a booking",
    )
    async def unassign(
        self, db_session: AsyncSession, principal: Principal, booking_id: UUID, data: Unassign
    ) -> BookingOut:
        ctx = await org_context(db_session, principal.org_id)
        booking, worker_ids = await services.unassign(db_session, principal, booking_id, data.worker_ids)
        return services.to_out(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/cancel",
        operation_id="cancelBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Cancel with a reason; frees the workers' time",
    )
    async def cancel(
        self, db_session: AsyncSession, principal: Principal, booking_id: UUID, data: Cancel
    ) -> BookingOut:
        await services.transition(db_session, principal, booking_id, "cancelled", reason=data.reason)
        return await _answer(db_session, principal, booking_id)

    @post(
        "/{booking_id:uuid}/complete",
        operation_id="completeBooking",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="Mark done (confirmed or in progress)",
    )
    async def complete(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> BookingOut:
        await services.transition(db_session, principal, booking_id, "completed")
        return await _answer(db_session, principal, booking_id)

    @post(
        "/{booking_id:uuid}/no-show",
        operation_id="markBookingNoShow",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="The client was not there (confirmed bookings)",
    )
    async def no_show(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> BookingOut:
        await services.transition(db_session, principal, booking_id, "no_show")
        return await _answer(db_session, principal, booking_id)


class AvailabilityController(Controller):
    path = "/v1/availability"
    tags = ["bookings"]

    @get(
        operation_id="getAvailability",
        # Its cost grows with cleaners x days x steps: the `expensive` limiter class.
        opt={**VIEW, "rate_limit": "expensive"},
        responses=problems(400, 404, 409),
        summary="Open slots for a service over local days, per start time with the workers free then. "
        f"At most {availability_service.MAX_WORKER_DAYS} cleaner-days and "
        f"{availability_service.MAX_CANDIDATE_STARTS} candidate start times per request: beyond, 400 "
        "availability-too-large says what to narrow (days, worker_id or step_minutes).",
    )
    async def availability(
        self,
        db_session: AsyncSession,
        principal: Principal,
        state: State,
        service_id: UUID,
        date_from: Day,
        date_to: Day,
        worker_id: UUID | None = None,
        step_minutes: Annotated[int | None, Parameter(ge=5, le=240)] = None,
        bedrooms: Annotated[int, Parameter(ge=0, le=50)] = 0,
        bathrooms: Annotated[int, Parameter(ge=0, le=50)] = 0,
        square_feet: Annotated[int | None, Parameter(ge=0, le=1_000_000)] = None,
        duration_minutes: Annotated[int | None, Parameter(ge=15, le=24 * 60)] = None,
    ) -> Availability:
        ctx = await org_context(db_session, principal.org_id)
        return await availability_service.availability(
            db_session,
            ctx,
            service_id=service_id,
            date_from=date_from,
            date_to=date_to,
            worker_id=worker_id,
            step_minutes=step_minutes,
            max_days=_settings(state).scheduling.max_availability_days,
            params=PricingParams(bedrooms=bedrooms, bathrooms=bathrooms, square_feet=square_feet),
            duration_minutes=duration_minutes,
        )


class SchedulingSettingsController(Controller):
    path = "/v1/scheduling/settings"
    tags = ["bookings"]

    @get(operation_id="getSchedulingSettings", opt=VIEW, summary="Travel buffer and slot step", responses=problems())
    async def get_settings(self, db_session: AsyncSession, principal: Principal) -> SchedulingSettingsOut:
        found = await get_settings(db_session, principal.org_id)
        return SchedulingSettingsOut(
            travel_buffer_minutes=found.travel_buffer_minutes, slot_step_minutes=found.slot_step_minutes
        )

    @put(
        operation_id="updateSchedulingSettings",
        opt={"permission": "settings.manage"},
        responses=problems(400),
        summary="Set the travel buffer (applies to bookings made or moved from now on) and slot step",
    )
    async def update_settings(
        self, db_session: AsyncSession, principal: Principal, data: SchedulingSettingsUpdate
    ) -> SchedulingSettingsOut:
        found = await update_settings(db_session, principal.org_id, data.travel_buffer_minutes, data.slot_step_minutes)
        return SchedulingSettingsOut(
            travel_buffer_minutes=found.travel_buffer_minutes, slot_step_minutes=found.slot_step_minutes
        )


def _result(ctx: Any, found: Any, result: series_service.Materialised, previous: UUID | None = None) -> SeriesResult:
    return SeriesResult(
        series=series_service.series_out(found),
        booking_ids=result.booking_ids,
        conflicts=[series_service.conflict_out(c, ctx) for c in result.conflicts],
        previous_series_id=previous,
    )


class SeriesController(Controller):
    path = "/v1/series"
    tags = ["recurring"]

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
        state: State,
        data: SeriesCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SeriesResult]:
        async def produce() -> SeriesResult:
            ctx = await org_context(db_session, principal.org_id)
            found, result = await series_service.create_series(
                db_session, principal, ctx, data, _settings(state).scheduling.horizon_days
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
    ) -> OffsetPagination[SeriesOut]:
        rows, total = await series_service.list_series(
            db_session, principal, client_id=client_id, status=status, limit=limit, offset=offset
        )
        return OffsetPagination(
            items=[series_service.series_out(s) for s in rows], total=total, limit=limit, offset=offset
        )

    @get(
        "/{series_id:uuid}",
        operation_id="getSeries",
        opt=VIEW,
        responses=problems(404),
        summary="One series (404 to a cleaner not assigned to it)",
    )
    async def get_series(self, db_session: AsyncSession, principal: Principal, series_id: UUID) -> SeriesOut:
        return series_service.series_out(await series_service.get_series(db_session, series_id, principal=principal))

    @get(
        "/{series_id:uuid}/conflicts",
        operation_id="listSeriesConflicts",
        opt=VIEW,
        responses=problems(404),
        summary="Occurrences that could not be booked (double booking, hours, time off, inactive worker)",
    )
    async def list_conflicts(
        self, db_session: AsyncSession, principal: Principal, series_id: UUID, limit: Limit = 50, offset: Offset = 0
    ) -> OffsetPagination[SeriesConflictOut]:
        ctx = await org_context(db_session, principal.org_id)
        rows, total = await series_service.list_conflicts(db_session, principal, series_id, limit=limit, offset=offset)
        return OffsetPagination(
            items=[series_service.conflict_out(c, ctx) for c in rows], total=total, limit=limit, offset=offset
        )

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
        state: State,
        series_id: UUID,
        occurrence_date: Day,
        data: OccurrenceEdit,
    ) -> SeriesResult:
        ctx = await org_context(db_session, principal.org_id)
        found, result, previous = await series_service.edit_occurrence(
            db_session, principal, ctx, series_id, occurrence_date, data, _settings(state).scheduling.horizon_days
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
        series_id: UUID,
        occurrence_date: Day,
        data: OccurrenceCancel,
    ) -> SeriesResult:
        ctx = await org_context(db_session, principal.org_id)
        found, cancelled = await series_service.cancel_occurrence(
            db_session, principal, ctx, series_id, occurrence_date, data
        )
        return SeriesResult(series=series_service.series_out(found), booking_ids=cancelled, conflicts=[])


class WorkerJobsController(Controller):
    path = "/v1/worker/jobs"
    tags = ["field"]

    @get(
        operation_id="listMyJobs",
        opt=STATUS,
        responses=problems(400),
        summary="The caller's own jobs on a local day (today by default)",
    )
    async def jobs(
        self,
        db_session: AsyncSession,
        principal: Principal,
        day: Annotated[Day | None, Parameter(query="date", description="local day; default today")] = None,
    ) -> list[WorkerJob]:
        ctx = await org_context(db_session, principal.org_id)
        from datetime import UTC, datetime

        return await field.jobs_on(db_session, principal, ctx, day or timeutil.local_date(datetime.now(UTC), ctx.tz))

    @post(
        "/{booking_id:uuid}/start",
        operation_id="startJob",
        opt=STATUS,
        responses=problems(404, 409),
        summary="Start work (201); repeating it returns the same entry (200). Moves the booking to in_progress.",
    )
    async def start(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> Response[FieldAction]:
        ctx = await org_context(db_session, principal.org_id)
        action, created = await field.start(db_session, principal, ctx, booking_id)
        return Response(action, status_code=201 if created else 200)

    @post(
        "/{booking_id:uuid}/pause",
        operation_id="pauseJob",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="Pause (closes the running time entry)",
    )
    async def pause(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> FieldAction:
        ctx = await org_context(db_session, principal.org_id)
        return await field.pause(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/resume",
        operation_id="resumeJob",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="Resume (opens a new time entry)",
    )
    async def resume(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> FieldAction:
        ctx = await org_context(db_session, principal.org_id)
        return await field.resume(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/finish",
        operation_id="finishJob",
        opt=STATUS,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Finish; more than 20% over the planned minutes needs a reason (400 overrun-reason-required)",
    )
    async def finish(
        self,
        db_session: AsyncSession,
        principal: Principal,
        state: State,
        booking_id: UUID,
        data: Finish | None = None,
    ) -> FieldAction:
        ctx = await org_context(db_session, principal.org_id)
        return await field.finish(
            db_session,
            principal,
            ctx,
            booking_id,
            data.reason if data else None,
            _settings(state).scheduling.overrun_percent,
        )
