"""/v1/notifications/settings and /v1/notifications/digests: the office's choices about reminders,
cleaners' agendas and digests (settings.manage to change, settings.manage to read: they name
the organisation's people)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.messaging.notifications.models import DIGEST_KEY_PATTERN
from spotless.domain.messaging.notifications.settings import (
    DigestSettingCreate,
    DigestSettingList,
    DigestSettingPut,
    DigestSettingRead,
    NotificationSettingsRead,
    NotificationSettingsUpdate,
    create_digest,
    delete_digest,
    get_notification_settings,
    list_digests,
    replace_digest,
    update_notification_settings,
)
from spotless.lib.errors import problems

DigestKeyPath = Annotated[str, Parameter(pattern=DIGEST_KEY_PATTERN, description="e.g. owner-summary")]
PERMISSION = "settings.manage"


class NotificationSettingsController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]

    @get(
        "/settings",
        operation_id="getNotificationSettings",
        opt={"permission": PERMISSION},
        responses=problems(),
        summary="Reminders on or off; whether and when (local time) cleaners get tomorrow's jobs",
        description=(
            "A visit's reminder goes at the same local time the day before, in the organisation's zone "
            "(across a DST change that is 23 or 25 real hours); not for visits cancelled, moved or held "
            "since it was planned. A visit moved gets one new reminder for its new start."
        ),
    )
    async def get_notification_settings(
        self, db_session: AsyncSession, principal: Principal
    ) -> NotificationSettingsRead:
        return NotificationSettingsRead.from_model(await get_notification_settings(db_session, principal.org_id))

    @put(
        "/settings",
        operation_id="updateNotificationSettings",
        opt={"permission": PERMISSION},
        responses=problems(400),
        summary="Change the notification settings (only the fields sent)",
    )
    async def update_notification_settings(
        self, db_session: AsyncSession, principal: Principal, data: NotificationSettingsUpdate
    ) -> NotificationSettingsRead:
        return NotificationSettingsRead.from_model(await update_notification_settings(db_session, principal, data))

    @get(
        "/digests",
        operation_id="listDigestSettings",
        opt={"permission": PERMISSION},
        responses=problems(),
        summary="The organisation's digests (at most 20)",
        description=(
            "Each enabled digest is sent once per period of its schedule (daily, weekly from Monday, "
            "monthly from the 1st), from 07:00 in the organisation's zone, to its recipients (empty: "
            "owners and admins)."
        ),
    )
    async def list_digest_settings(self, db_session: AsyncSession, principal: Principal) -> DigestSettingList:
        return DigestSettingList(items=[DigestSettingRead.from_model(r) for r in await list_digests(db_session)])

    @post(
        "/digests",
        operation_id="createDigestSetting",
        opt={"permission": PERMISSION},
        responses=problems(400, 409),
        summary="Add a digest: its key, enabled, schedule, recipients (user ids of members)",
    )
    async def create_digest_setting(
        self, db_session: AsyncSession, principal: Principal, data: DigestSettingCreate
    ) -> DigestSettingRead:
        return DigestSettingRead.from_model(await create_digest(db_session, principal, data))

    @put(
        "/digests/{digest_key:str}",
        operation_id="replaceDigestSetting",
        opt={"permission": PERMISSION},
        responses=problems(400, 404),
        summary="Replace one digest's settings: enabled, schedule, recipients",
    )
    async def replace_digest_setting(
        self, db_session: AsyncSession, principal: Principal, digest_key: DigestKeyPath, data: DigestSettingPut
    ) -> DigestSettingRead:
        return DigestSettingRead.from_model(await replace_digest(db_session, principal, digest_key, data))

    @delete(
        "/digests/{digest_key:str}",
        operation_id="deleteDigestSetting",
        opt={"permission": PERMISSION},
        responses=problems(404),
        summary="Remove one digest",
    )
    async def delete_digest_setting(
        self, db_session: AsyncSession, principal: Principal, digest_key: DigestKeyPath
    ) -> None:
        await delete_digest(db_session, principal, digest_key)
