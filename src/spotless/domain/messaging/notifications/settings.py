"""The organisation's notification choices: reminders and cleaners' agendas, and its digests.
Every change is audited; a digest's recipients must be members of the organisation."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import changes, record_audit
from spotless.domain.identity.public import Principal, member_role
from spotless.domain.messaging.notifications.models import DIGEST_KEY_PATTERN, DigestSetting, NotificationSettings
from spotless.lib.errors import FieldError, not_found
from spotless.lib.query import flush_or_conflict
from spotless.lib.schema import UNSET, Clock, Input, Output, UnsetType

# An organisation keeps a handful of digests, listed whole (a short list, no paging needed).
MAX_DIGESTS = 20
DigestKey = Annotated[str, Meta(pattern=DIGEST_KEY_PATTERN, examples=["owner-summary"])]
DigestSchedule = Literal["daily", "weekly", "monthly"]


class NotificationSettingsRead(Output):
    reminders_enabled: bool
    agenda_enabled: bool
    agenda_at: Annotated[str, Meta(description="HH:MM local time cleaners get tomorrow's jobs")]

    @classmethod
    def from_model(cls, row: NotificationSettings) -> NotificationSettingsRead:
        return cls(
            reminders_enabled=row.reminders_enabled,
            agenda_enabled=row.agenda_enabled,
            agenda_at=row.agenda_at.strftime("%H:%M"),
        )


class NotificationSettingsUpdate(Input):
    """Only the fields sent change."""

    reminders_enabled: bool | UnsetType = UNSET
    agenda_enabled: bool | UnsetType = UNSET
    agenda_at: Clock | UnsetType = UNSET


class DigestSettingRead(Output):
    id: UUID
    digest_key: str
    enabled: bool
    schedule: DigestSchedule
    recipients: Annotated[list[UUID], Meta(description="user ids; empty: the organisation's owners and admins")]

    @classmethod
    def from_model(cls, row: DigestSetting) -> DigestSettingRead:
        return cls(
            id=row.id,
            digest_key=row.digest_key,
            enabled=row.enabled,
            schedule=row.schedule,  # type: ignore[arg-type]
            recipients=list(row.recipients or []),
        )


class DigestSettingList(Output):
    items: list[DigestSettingRead]


class DigestSettingPut(Input):
    enabled: bool = True
    schedule: DigestSchedule = "daily"
    recipients: Annotated[list[UUID], Meta(max_length=50)] = msgspec.field(default_factory=list)


class DigestSettingCreate(Input):
    digest_key: DigestKey
    enabled: bool = True
    schedule: DigestSchedule = "daily"
    recipients: Annotated[list[UUID], Meta(max_length=50)] = msgspec.field(default_factory=list)


def _defaults(org_id: UUID) -> NotificationSettings:
    return NotificationSettings(org_id=org_id, reminders_enabled=True, agenda_enabled=True, agenda_at=time(18, 0))


async def get_notification_settings(
    session: AsyncSession, org_id: UUID, *, for_update: bool = False
) -> NotificationSettings:
    stmt = select(NotificationSettings).where(NotificationSettings.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    return found if found is not None else _defaults(org_id)


async def update_notification_settings(
    session: AsyncSession, principal: Principal, data: NotificationSettingsUpdate
) -> NotificationSettings:
    current = await get_notification_settings(session, principal.org_id, for_update=True)
    fields = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "agenda_at" in fields:
        fields["agenda_at"] = time.fromisoformat(fields["agenda_at"])
    before = {k: getattr(current, k) for k in fields}
    for key, value in fields.items():
        setattr(current, key, value)
    if current not in session:
        session.add(current)
    await flush_or_conflict(session, "notification-settings-conflict", "The settings were saved meanwhile: try again.")

    # The audit trail is JSON: a clock time is written as it is shown (HH:MM).
    def plain(values: dict[str, object]) -> dict[str, object]:
        return {k: v.strftime("%H:%M") if isinstance(v, time) else v for k, v in values.items()}

    old, new = changes(plain(before), plain(fields))
    if new:
        record_audit(
            session, principal, "notification_settings.update", "notification_settings", principal.org_id, old, new
        )
    return current


async def list_digests(session: AsyncSession) -> list[DigestSetting]:
    rows = await session.scalars(select(DigestSetting).order_by(DigestSetting.digest_key).limit(MAX_DIGESTS))
    return list(rows)


async def _recipients(session: AsyncSession, principal: Principal, recipients: list[UUID]) -> list[UUID]:
    unique = list(dict.fromkeys(recipients))
    for index, user_id in enumerate(unique):
        if await member_role(session, principal.org_id, user_id) is None:
            raise FieldError(f"recipients[{index}]", "not a member of this organisation")
    return unique


def _audited(row: DigestSetting) -> dict[str, object]:
    return {"enabled": row.enabled, "schedule": row.schedule, "recipients": [str(r) for r in row.recipients]}


async def create_digest(session: AsyncSession, principal: Principal, data: DigestSettingCreate) -> DigestSetting:
    recipients = await _recipients(session, principal, data.recipients)
    if len(await list_digests(session)) >= MAX_DIGESTS:
        raise FieldError("digest_key", f"an organisation keeps at most {MAX_DIGESTS} digests")
    row = DigestSetting(
        org_id=principal.org_id,
        digest_key=data.digest_key,
        enabled=data.enabled,
        schedule=data.schedule,
        recipients=recipients,
    )
    session.add(row)
    # The key is unique per organisation: a second one answers 409.
    await flush_or_conflict(session, "digest-exists", f"A digest {data.digest_key!r} exists already.")
    record_audit(session, principal, "digest_settings.create", "digest_settings", row.id, None, _audited(row))
    return row


async def replace_digest(
    session: AsyncSession, principal: Principal, digest_key: str, data: DigestSettingPut
) -> DigestSetting:
    """Replace the digest `digest_key` of the caller's organisation (404 when it has none)."""
    recipients = await _recipients(session, principal, data.recipients)
    row = await session.scalar(select(DigestSetting).where(DigestSetting.digest_key == digest_key).with_for_update())
    if row is None:
        raise not_found("digest")
    before = _audited(row)
    row.enabled, row.schedule, row.recipients = data.enabled, data.schedule, recipients
    await session.flush()
    record_audit(session, principal, "digest_settings.update", "digest_settings", row.id, before, _audited(row))
    return row


async def delete_digest(session: AsyncSession, principal: Principal, digest_key: str) -> None:
    result = await session.execute(
        delete(DigestSetting).where(DigestSetting.digest_key == digest_key).returning(DigestSetting.id)
    )
    removed = result.scalar_one_or_none()
    if removed is None:
        raise not_found("digest")
    record_audit(session, principal, "digest_settings.delete", "digest_settings", removed, {"digest_key": digest_key})
