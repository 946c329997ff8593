"""/v1/scheduling/settings: the travel buffer and the slot step."""

from __future__ import annotations

from litestar import Controller, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.scheduling.context import get_settings, update_settings
from spotless.domain.scheduling.controllers.common import VIEW
from spotless.domain.scheduling.schemas import SchedulingSettingsRead, SchedulingSettingsUpdate
from spotless.lib.errors import problems


class SchedulingSettingsController(Controller):
    path = "/v1/scheduling/settings"
    tags = ["bookings"]

    @get(operation_id="getSchedulingSettings", opt=VIEW, summary="Travel buffer and slot step", responses=problems())
    async def get_settings(self, db_session: AsyncSession, principal: Principal) -> SchedulingSettingsRead:
        return SchedulingSettingsRead.from_model(await get_settings(db_session, principal.org_id))

    @put(
        operation_id="updateSchedulingSettings",
        opt={"permission": "settings.manage"},
        responses=problems(400),
        summary="Set the travel buffer (applies to bookings made or moved from now on) and slot step",
    )
    async def update_settings(
        self, db_session: AsyncSession, principal: Principal, data: SchedulingSettingsUpdate
    ) -> SchedulingSettingsRead:
        found = await update_settings(db_session, principal.org_id, data.travel_buffer_minutes, data.slot_step_minutes)
        return SchedulingSettingsRead.from_model(found)
