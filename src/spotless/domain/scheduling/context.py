"""What every scheduling rule needs about the organisation: its zone, travel buffer and slot step.

Also the after-commit booking counter: `bookings_total{action}` counts an action only once the
outermost transaction that made it has committed, so a rolled-back request (a conflict, a crash)
is never counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from spotless.db.unit_of_work import collect_after_commit
from spotless.domain.identity.models import Organization
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.models import SchedulingSettings
from spotless.lib.errors import not_found
from spotless.lib.metrics import BOOKINGS

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


def count_after_commit(session: AsyncSession | Session, action: str, amount: int = 1) -> None:
    """Counted once the outermost transaction commits; a savepoint rolled back around it (a
    conflicting occurrence) drops only its own count."""
    collect_after_commit(session, _count_committed, (action, amount))


def _count_committed(counted: list[tuple[str, int]]) -> None:
    for action, amount in counted:
        BOOKINGS.labels(action=action).inc(amount)
