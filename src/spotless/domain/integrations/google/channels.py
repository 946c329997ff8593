"""Watch channels: Google tells us a calendar changed, we run the incremental sync.

Channels cannot be renewed: before one expires (a quarter of its life left) a new one is made, both
are stored in one transaction (the old in old_channel_*), then the old is stopped; a crash in between
leaves the old to be stopped on the next pass, never an orphan we forgot. The channel's token is a
random secret Google echoes in X-Goog-Channel-Token; we keep only its SHA-256 and compare in
constant time. Without GCAL_WEBHOOK_URL there are no channels: polling alone keeps calendars fresh."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.google.client import GoogleCalendarClient
from spotless.domain.integrations.google.config import GcalConfig
from spotless.domain.integrations.google.models import GcalCalendar

logger = logging.getLogger("spotless.integrations.google")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needs_new_channel(calendar: GcalCalendar, cfg: GcalConfig, now: datetime) -> bool:
    if not cfg.webhook_url:
        return False
    if calendar.channel_id is None or calendar.channel_expires_at is None:
        return True
    return calendar.channel_expires_at - now < timedelta(seconds=cfg.channel_ttl_seconds / 4)


async def maintain_channel(
    session: AsyncSession, client: GoogleCalendarClient, cfg: GcalConfig, calendar: GcalCalendar, now: datetime
) -> bool:
    """Open (or replace) the calendar's channel when due and stop a replaced one; True if a new one
    was opened. The caller holds the row and commits."""
    opened = False
    if needs_new_channel(calendar, cfg, now):
        secret = secrets.token_urlsafe(32)
        channel_id = uuid4().hex
        channel = await client.watch(
            calendar.calendar_id,
            channel_id=channel_id,
            address=cfg.webhook_url,
            token=secret,
            expiration=now + timedelta(seconds=cfg.channel_ttl_seconds),
        )
        if calendar.channel_id is not None and calendar.old_channel_id is None:
            calendar.old_channel_id, calendar.old_channel_resource_id = (
                calendar.channel_id,
                calendar.channel_resource_id,
            )
        calendar.channel_id, calendar.channel_resource_id = channel.id, channel.resourceId
        calendar.channel_token_hash = token_hash(secret)
        expires = int(channel.expiration) / 1000 if channel.expiration else None
        calendar.channel_expires_at = (
            datetime.fromtimestamp(expires, UTC) if expires else now + timedelta(seconds=cfg.channel_ttl_seconds)
        )
        await session.flush()
        opened = True
        logger.info("gcal: watch channel %s opened for calendar %s", channel.id, calendar.id)
    if calendar.old_channel_id is not None and calendar.old_channel_resource_id is not None:
        await client.stop_channel(calendar.old_channel_id, calendar.old_channel_resource_id)
        logger.info("gcal: watch channel %s stopped (replaced)", calendar.old_channel_id)
        calendar.old_channel_id = calendar.old_channel_resource_id = None
    return opened


@dataclass(frozen=True)
class ChannelOwner:
    org_id: UUID
    calendar_row_id: UUID


async def verify_notification(session: AsyncSession, channel_id: str, token: str | None) -> ChannelOwner | bool:
    """The calendar a notification is for when its channel is ours and the token matches; False
    for a channel we do not keep (replaced, or from before a disconnect); True for one of ours with
    a wrong or missing token (forged). The endpoint has no organisation bound: a SECURITY DEFINER
    look-up answers only these facts."""
    if not channel_id or len(channel_id) > 64:
        return False
    row = (
        await session.execute(
            text("SELECT org_id, calendar_row_id, token_hash FROM gcal_channel_owner(:channel)"),
            {"channel": channel_id},
        )
    ).first()
    if row is None or not row.token_hash:
        return False
    if token is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        return True
    return ChannelOwner(org_id=row.org_id, calendar_row_id=row.calendar_row_id)
