"""/v1/bookings: book, list, move, (un)assign and the status changes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import OrgProfile, Principal
from spotless.domain.scheduling import bookings, placement
from spotless.domain.scheduling.context import OrgContext, scheduling_context
from spotless.domain.scheduling.controllers.common import ASSIGN, CONTEXT, EDIT, STATUS, VIEW, IdempotencyKey
from spotless.domain.scheduling.schemas import (
    BookingAssign,
    BookingCancel,
    BookingCreate,
    BookingRead,
    BookingReschedule,
    BookingUnassign,
)
from spotless.domain.scheduling.status import transition
from spotless.lib.errors import problems
from spotless.lib.idempotency import idempotent
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.schema import Cursor, CursorPage, Day, Limit


class BookingController(Controller):
    path = "/v1/bookings"
    tags = ["bookings"]
    dependencies = {**CONTEXT}

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
        org: OrgProfile,
        data: BookingCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BookingRead]:
        async def produce() -> BookingRead:
            # Read inside the idempotent section, as before: a replay reads nothing more.
            ctx = await scheduling_context(db_session, org)
            booking, worker_ids = await placement.create_booking(db_session, principal, ctx, data)
            return BookingRead.from_model(booking, worker_ids, ctx)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @get(
        operation_id="listBookings",
        opt=VIEW,
        responses=problems(400),
        summary="List bookings by start time, filtered by local day range, status, worker, client, series or "
        "payment hold (cleaners see their own, never a held one); page with `cursor` = the previous page's "
        "`next_cursor`",
    )
    async def list_bookings(
        self,
        db_session: AsyncSession,
        principal: Principal,
        ctx: OrgContext,
        date_from: Annotated[Day | None, Parameter(description="first local day (organisation's zone)")] = None,
        date_to: Annotated[Day | None, Parameter(description="last local day, inclusive")] = None,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        worker_id: UUID | None = None,
        client_id: UUID | None = None,
        series_id: UUID | None = None,
        payment_hold: Annotated[
            bool | None, Parameter(description="only visits on (true) or off (false) payment hold")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CursorPage[BookingRead]:
        filters = bookings.BookingFilters(
            date_from=date_from,
            date_to=date_to,
            status=status,
            worker_id=worker_id,
            client_id=client_id,
            series_id=series_id,
            payment_hold=payment_hold,
        )
        return await bookings.list_bookings(db_session, principal, ctx, filters, limit=limit, cursor=cursor)

    @get("/{booking_id:uuid}", operation_id="getBooking", opt=VIEW, responses=problems(404), summary="One booking")
    async def get_booking(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> BookingRead:
        return await bookings.booking_read(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/confirm",
        operation_id="confirmBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(404, 409),
        summary="pending -> confirmed",
    )
    async def confirm(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> BookingRead:
        await transition(db_session, principal, booking_id, "confirmed")
        return await bookings.booking_read(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/reschedule",
        operation_id="rescheduleBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Move a pending or confirmed booking (same duration); workers stay, re-checked",
    )
    async def reschedule(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID, data: BookingReschedule
    ) -> BookingRead:
        booking, worker_ids = await placement.reschedule(
            db_session, principal, ctx, booking_id, data.starts_at, data.override
        )
        return BookingRead.from_model(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/assign",
        operation_id="assignBooking",
        opt=ASSIGN,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Add workers to a booking",
    )
    async def assign(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID, data: BookingAssign
    ) -> BookingRead:
        booking, worker_ids = await placement.assign(
            db_session, principal, ctx, booking_id, data.worker_ids, data.override
        )
        return BookingRead.from_model(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/unassign",
        operation_id="unassignBooking",
        opt=ASSIGN,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Take workers off a booking",
    )
    async def unassign(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID, data: BookingUnassign
    ) -> BookingRead:
        booking, worker_ids = await placement.unassign(db_session, principal, booking_id, data.worker_ids)
        return BookingRead.from_model(booking, worker_ids, ctx)

    @post(
        "/{booking_id:uuid}/cancel",
        operation_id="cancelBooking",
        opt=EDIT,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Cancel with a reason; frees the workers' time",
    )
    async def cancel(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID, data: BookingCancel
    ) -> BookingRead:
        await transition(db_session, principal, booking_id, "cancelled", reason=data.reason)
        return await bookings.booking_read(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/complete",
        operation_id="completeBooking",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="Mark done (confirmed or in progress)",
    )
    async def complete(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> BookingRead:
        await transition(db_session, principal, booking_id, "completed")
        return await bookings.booking_read(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/no-show",
        operation_id="markBookingNoShow",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="The client was not there (confirmed bookings)",
    )
    async def no_show(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> BookingRead:
        await transition(db_session, principal, booking_id, "no_show")
        return await bookings.booking_read(db_session, principal, ctx, booking_id)
