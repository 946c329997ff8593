"""/v1/worker/jobs: a cleaner's own day and the time they spend on each job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling import field, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.controllers.common import CONTEXT, STATUS
from spotless.domain.scheduling.schemas import FieldAction, JobFinish, WorkerJobRead
from spotless.lib.errors import problems
from spotless.lib.schema import Day
from spotless.settings import Settings


class WorkerJobsController(Controller):
    path = "/v1/worker/jobs"
    tags = ["field"]
    dependencies = {**CONTEXT}

    @get(
        operation_id="listMyJobs",
        opt=STATUS,
        responses=problems(400),
        summary="The caller's own jobs on a local day (today by default); visits on payment hold are not listed",
    )
    async def jobs(
        self,
        db_session: AsyncSession,
        principal: Principal,
        ctx: OrgContext,
        day: Annotated[Day | None, Parameter(query="date", description="local day; default today")] = None,
    ) -> list[WorkerJobRead]:
        return await field.jobs_on(db_session, principal, ctx, day or timeutil.local_date(datetime.now(UTC), ctx.tz))

    @post(
        "/{booking_id:uuid}/travel",
        operation_id="startTravelToJob",
        opt=STATUS,
        responses=problems(404, 409),
        summary="On my way: an assigned cleaner sets off for a confirmed job of today or later (201); the client "
        "is told once (a text if they agreed to texts, else as they prefer). Pressing it again, or a teammate "
        "pressing it, returns the job unchanged (200) and tells nobody. 409 for a job cancelled, started, "
        "past or on payment hold",
    )
    async def travel(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> Response[FieldAction]:
        action, created = await field.travel(db_session, principal, ctx, booking_id)
        return Response(action, status_code=201 if created else 200)

    @post(
        "/{booking_id:uuid}/start",
        operation_id="startJob",
        opt=STATUS,
        responses=problems(404, 409),
        summary="Start work (201); repeating it returns the same entry (200). Moves the booking to in_progress. "
        "A visit on payment hold cannot be started (409 payment-hold).",
    )
    async def start(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> Response[FieldAction]:
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
    async def pause(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> FieldAction:
        return await field.pause(db_session, principal, ctx, booking_id)

    @post(
        "/{booking_id:uuid}/resume",
        operation_id="resumeJob",
        opt=STATUS,
        status_code=200,
        responses=problems(404, 409),
        summary="Resume (opens a new time entry)",
    )
    async def resume(
        self, db_session: AsyncSession, principal: Principal, ctx: OrgContext, booking_id: UUID
    ) -> FieldAction:
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
        ctx: OrgContext,
        settings: Settings,
        booking_id: UUID,
        data: JobFinish | None = None,
    ) -> FieldAction:
        return await field.finish(
            db_session,
            principal,
            ctx,
            booking_id,
            data.reason if data else None,
            settings.scheduling.overrun_percent,
        )
