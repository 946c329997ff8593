"""An organisation's retention: its own row, or the RETENTION_* defaults until it saves one."""

from __future__ import annotations

from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import changes, record_audit
from spotless.domain.identity.public import Principal
from spotless.domain.retention.models import RetentionSettings
from spotless.domain.retention.schemas import RetentionSettingsUpdate
from spotless.lib.query import flush_or_conflict
from spotless.retention_settings import RetentionSettings as RetentionDefaults


def defaults(org_id: UUID, env: RetentionDefaults) -> RetentionSettings:
    return RetentionSettings(
        org_id=org_id,
        message_body_days=env.message_body_days,
        export_days=env.export_days,
        photo_days=env.photo_days,
    )


async def get_retention(
    session: AsyncSession, org_id: UUID, env: RetentionDefaults, *, for_update: bool = False
) -> RetentionSettings:
    stmt = select(RetentionSettings).where(RetentionSettings.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    return found if found is not None else defaults(org_id, env)


async def update_retention(
    session: AsyncSession, principal: Principal, env: RetentionDefaults, data: RetentionSettingsUpdate
) -> RetentionSettings:
    current = await get_retention(session, principal.org_id, env, for_update=True)
    fields = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    before = {k: getattr(current, k) for k in fields}
    for key, value in fields.items():
        setattr(current, key, value)
    if current not in session:
        session.add(current)
    await flush_or_conflict(session, "retention-settings-conflict", "The settings were saved meanwhile: try again.")
    old, new = changes(before, fields)
    if new:
        record_audit(session, principal, "retention_settings.update", "retention_settings", principal.org_id, old, new)
    return current
