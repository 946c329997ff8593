"""Connects that were started and never finished (or finished) leave their `oauth_states` row
behind; once a day past its expiry it can answer nothing but "expired", so `retention.apply`
deletes it in the organisation's own session."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.retention.public import RetentionSettings, register_purger

# A day of grace keeps the "expired" answer (rather than "unknown") for a browser coming back late.
_PURGE = text(
    "DELETE FROM oauth_states WHERE id IN (SELECT id FROM oauth_states WHERE org_id = :org_id"
    " AND expires_at < now() - interval '1 day' ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


async def purge_oauth_states(session: AsyncSession, org_id: UUID, policy: RetentionSettings, batch: int) -> int:
    result = await session.execute(_PURGE, {"org_id": org_id, "batch": batch})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


register_purger("oauth_states", purge_oauth_states)
