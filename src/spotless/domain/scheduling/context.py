"""What every scheduling rule needs about the organisation: its zone, travel buffer and slot step.

Built from identity's `OrgProfile` (never the ORM row) and scheduling's own settings row. Handlers
receive it as the `ctx` dependency (`provide_scheduling_context`, on top of the app-level `org`);
the materialiser, which has no request, loads it by organisation id (`org_context`).

(`bookings_total{action}` is no longer counted here: scheduling emits its booking events and the
`system.count_booking` subscriber counts them, so only committed actions are ever counted.)"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.org_cache import OrgCache
from spotless.domain.identity.public import OrgProfile, org_config_changed, org_profile
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.models import SchedulingSettings

DEFAULT_BUFFER_MINUTES = 0
DEFAULT_STEP_MINUTES = 30


class OrgContext:
    """The organisation as scheduling sees it: its profile, zone, travel buffer and slot step."""

    __slots__ = ("buffer", "org", "step_minutes", "tz")

    def __init__(self, org: OrgProfile, tz: ZoneInfo, buffer: timedelta, step_minutes: int) -> None:
        self.org = org
        self.tz = tz
        self.buffer = buffer
        self.step_minutes = step_minutes

    @property
    def org_id(self) -> UUID:
        return self.org.id

    @property
    def tz_name(self) -> str:
        return self.org.timezone

    @property
    def buffer_minutes(self) -> int:
        return int(self.buffer.total_seconds() // 60)


# (travel buffer minutes, slot step minutes) per organisation; see db/org_cache.py for freshness.
_settings: OrgCache[tuple[int, int]] = OrgCache()


async def scheduling_context(session: AsyncSession, org: OrgProfile, *, cached: bool = True) -> OrgContext:
    """The settings come from the per-process cache on the request path, where `org` is the
    principal's own (the `org` dependency); outside a request (`org_context`) they are read."""
    values = _settings.get(org.id) if cached else None
    if values is None:
        token = _settings.token()
        settings = await get_settings(session, org.id)
        values = (settings.travel_buffer_minutes, settings.slot_step_minutes)
        if cached:
            _settings.put(org.id, values, token)
    return OrgContext(
        org=org, tz=timeutil.zone(org.timezone), buffer=timedelta(minutes=values[0]), step_minutes=values[1]
    )


async def provide_scheduling_context(org: OrgProfile, db_session: AsyncSession) -> OrgContext:
    """Controller dependency `ctx`: the caller's organisation as scheduling sees it (its settings
    cached per process like the profile it is built on)."""
    return await scheduling_context(db_session, org)


async def org_context(session: AsyncSession, org_id: UUID) -> OrgContext:
    """The context of `org_id` outside a request (the materialiser); 404 when it is not visible."""
    return await scheduling_context(session, await org_profile(session, org_id), cached=False)


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
    org_config_changed(session, org_id)  # cached settings: this node at commit, the others by version
    await session.flush()
    return found
