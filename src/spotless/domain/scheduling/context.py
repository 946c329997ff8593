"""What every scheduling rule needs about the organisation: its zone, travel buffer and slot step.

(`bookings_total{action}` is no longer counted here: scheduling emits its booking events and the
`system.count_booking` subscriber counts them, so only committed actions are ever counted.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.models import Organization
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.models import SchedulingSettings
from spotless.lib.errors import not_found

DEFAULT_BUFFER_MINUTES = 0
DEFAULT_STEP_MINUTES = 30


@dataclass(frozen=True)
class OrgContext:
    org_id: UUID
    organization: Organization
    tz: ZoneInfo
    buffer: timedelta
    step_minutes: int

    @property
    def tz_name(self) -> str:
        return self.organization.timezone

    @property
    def buffer_minutes(self) -> int:
        return int(self.buffer.total_seconds() // 60)


async def org_context(session: AsyncSession, org_id: UUID) -> OrgContext:
    row = (
        await session.execute(
            select(Organization, SchedulingSettings)
            .outerjoin(SchedulingSettings, SchedulingSettings.org_id == Organization.id)
            .where(Organization.id == org_id)
        )
    ).first()
    if row is None:
        raise not_found("organisation")
    organization, settings = row
    return OrgContext(
        org_id=org_id,
        organization=organization,
        tz=timeutil.zone(organization.timezone),
        buffer=timedelta(minutes=settings.travel_buffer_minutes if settings else DEFAULT_BUFFER_MINUTES),
        step_minutes=settings.slot_step_minutes if settings else DEFAULT_STEP_MINUTES,
    )


async def get_settings(session: AsyncSession, org_id: UUID) -> SchedulingSettings:
    found = await session.scalar(select(SchedulingSettings).where(SchedulingSettings.org_id == org_id))
    return found or SchedulingSettings(
        org_id=org_id, travel_buffer_minutes=DEFAULT_BUFFER_MINUTES, slot_step_minutes=DEFAULT_STEP_MINUTES
    )


async def update_settings(
    session: AsyncSession, org_id: UUID, travel_buffer_minutes: int | None, slot_step_minutes: int | None
) -> SchedulingSettings:
    """Changing the buffer applies to bookings made or moved from now on; existing assignments
    keep the range they were booked with (re-checking them all could fail half-way)."""
    found = await session.scalar(
        select(SchedulingSettings).where(SchedulingSettings.org_id == org_id).with_for_update()
    )
    if found is None:
        found = SchedulingSettings(
            org_id=org_id, travel_buffer_minutes=DEFAULT_BUFFER_MINUTES, slot_step_minutes=DEFAULT_STEP_MINUTES
        )
        session.add(found)
    if travel_buffer_minutes is not None:
        found.travel_buffer_minutes = travel_buffer_minutes
    if slot_step_minutes is not None:
        found.slot_step_minutes = slot_step_minutes
    await session.flush()
    return found
