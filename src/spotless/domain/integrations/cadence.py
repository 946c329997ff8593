"""Which connections are due a sync, claimed so two pollers never sync one connection at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.models import IntegrationConnection

# SECURITY DEFINER (migration 0027): the pollers run with no organisation bound.
_CLAIM = text("SELECT org_id, id FROM integration_claim_due(:provider, :interval, :limit)")


@dataclass(frozen=True)
class DueConnection:
    org_id: UUID
    id: UUID


async def claim_due(session: AsyncSession, provider: str, interval_seconds: int, limit: int) -> list[DueConnection]:
    """Active connections of `provider` due now (or never synced), their next_sync_at pushed to
    now + interval in the same statement (FOR UPDATE SKIP LOCKED); needs_reconnect and
    disconnected ones are never claimed. Commit promptly: the claim is the caller's transaction."""
    rows = await session.execute(_CLAIM, {"provider": provider, "interval": interval_seconds, "limit": limit})
    return [DueConnection(org_id=r.org_id, id=r.id) for r in rows]


async def record_sync(session: AsyncSession, connection_id: UUID, *, ok: bool, error: str | None) -> None:
    """In a session bound to the connection's organisation."""
    row = await session.scalar(
        select(IntegrationConnection).where(IntegrationConnection.id == connection_id).with_for_update()
    )
    if row is None:
        return
    row.last_sync_at = datetime.now(UTC) if ok else row.last_sync_at
    row.last_error = None if ok else (error or "sync failed")[:2000]
    row.error_count = 0 if ok else row.error_count + 1
