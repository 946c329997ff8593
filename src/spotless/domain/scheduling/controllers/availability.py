"""/v1/availability: open slots for a service."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import PricingParams
from spotless.domain.scheduling import availability as availability_service
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.controllers.common import CONTEXT, VIEW
from spotless.domain.scheduling.schemas import Availability
from spotless.lib.errors import problems
from spotless.lib.schema import Day
from spotless.settings import Settings


class AvailabilityController(Controller):
    path = "/v1/availability"
    tags = ["bookings"]
    dependencies = {**CONTEXT}

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
        ctx: OrgContext,
        settings: Settings,
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
        return await availability_service.availability(
            db_session,
            ctx,
            service_id=service_id,
            date_from=date_from,
            date_to=date_to,
            worker_id=worker_id,
            step_minutes=step_minutes,
            max_days=settings.scheduling.max_availability_days,
            params=PricingParams(bedrooms=bedrooms, bathrooms=bathrooms, square_feet=square_feet),
            duration_minutes=duration_minutes,
        )
