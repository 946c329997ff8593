"""The guides' "safe cadence" for the pollers (gcal-sync, qbo-sync): the runner may loop every
minute; each connection syncs only when its interval has passed, and one that is disconnected or
needs reconnecting is never claimed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.models import IntegrationConnection

MAX_ERROR_CHARS = 1_000
_CLAIM = text("SELECT org_id, id, owner_user_id, external_id FROM integration_claim_due(:provider, :interval, :limit)")


@dataclass(frozen=True)
class DueConnection:
    org_id: UUID
    id: UUID
    owner_user_id: UUID | None
    # Google: the account's email; QuickBooks: the realmId.
    external_id: str | None


async def claim_due(session: AsyncSession, provider: str, interval_seconds: int, limit: int) -> list[DueConnection]:
    """Active `provider` connections of every organisation whose next_sync_at has come (or was
    never set), at most `limit`, each pushed to now + `interval_seconds` in the same statement
    (SKIP LOCKED: two runners at once take different ones). Commit promptly: the claim is that
    update. Works in a session bound to no organisation (a SECURITY DEFINER function)."""
    rows = await session.execute(_CLAIM, {"provider": provider, "interval": int(interval_seconds), "limit": int(limit)})
    return [DueConnection(r.org_id, r.id, r.owner_user_id, r.external_id) for r in rows]


async def record_sync(session: AsyncSession, connection_id: UUID, *, ok: bool, error: str | None = None) -> None:
    """The outcome of one sync pass, in a session bound to the connection's organisation: a
    success stamps last_sync_at and clears the error streak; a failure counts it."""
    now = datetime.now(UTC)
    values: dict[str, object] = (
        {"last_sync_at": now, "last_error": None, "error_count": 0}
        if ok
        else {
            "last_error": (error or "failed")[:MAX_ERROR_CHARS],
            "error_count": IntegrationConnection.error_count + 1,
        }
    )
    await session.execute(
        update(IntegrationConnection)
        .where(IntegrationConnection.id == connection_id)
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )
