"""Per-organisation messaging settings: reply-to, logo, quiet hours for texts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.models import MessagingSettings
from spotless.domain.messaging.schemas import MessagingSettingsRead, MessagingSettingsUpdate
from spotless.lib.errors import FieldError

DEFAULT_QUIET = (time(21, 0), time(8, 0))


def _clock(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _time(value: str | None) -> time | None:
    # The schema's pattern has already checked HH:MM, 00:00 to 23:59.
    return None if value is None else time.fromisoformat(value)


async def read_settings(session: AsyncSession) -> MessagingSettingsRead:
    row = await session.scalar(select(MessagingSettings))
    if row is None:
        return MessagingSettingsRead(
            reply_to=None, logo_url=None, quiet_start=_clock(DEFAULT_QUIET[0]), quiet_end=_clock(DEFAULT_QUIET[1])
        )
    return MessagingSettingsRead(
        reply_to=row.reply_to,
        logo_url=row.logo_url,
        quiet_start=_clock(row.quiet_start),
        quiet_end=_clock(row.quiet_end),
    )


async def update_settings(
    session: AsyncSession, org_id: uuid.UUID, data: MessagingSettingsUpdate
) -> MessagingSettingsRead:
    current = await read_settings(session)
    merged = msgspec.structs.replace(
        current, **{f: v for f in data.__struct_fields__ if (v := getattr(data, f)) is not msgspec.UNSET}
    )
    if (merged.quiet_start is None) != (merged.quiet_end is None):
        raise FieldError("quiet_end", "quiet hours need both a start and an end (or neither)")
    now = datetime.now(UTC)
    values = {
        **msgspec.structs.asdict(merged),
        "quiet_start": _time(merged.quiet_start),
        "quiet_end": _time(merged.quiet_end),
    }
    await session.execute(
        pg_insert(MessagingSettings)
        .values(org_id=org_id, created_at=now, updated_at=now, **values)
        .on_conflict_do_update(index_elements=["org_id"], set_={**values, "updated_at": now})
    )
    return merged
