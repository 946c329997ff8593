"""Identity jobs: republish session state to Redis (safety net for revocations) and housekeeping.
Identity's emails (password reset, invitation, an administrator's temporary-password reset) are
messages of messaging's one delivery path (identity/messages.py): their secrets are minted by the
`messaging.deliver` job through identity's hooks."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy import text

from spotless.domain.identity.session_cache import publish_states, read_member_states
from spotless.lib.idempotency import RETENTION_HOURS
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import claim_run


@job("identity.sync_sessions", max_retries=20, min_backoff_ms=500, max_backoff_ms=60_000, time_limit_ms=30_000)
async def sync_sessions(org_id: UUID, user_id: UUID) -> None:
    """Idempotent: copies the current Postgres truth of one member's sessions to Redis. Retried
    until Redis takes it, so a revocation made while Redis was down still reaches every node."""
    rt = get_runtime()
    window = rt.settings.auth.access_token_ttl_minutes * 60 + 60
    async with rt.session(org_id=org_id) as session:
        states = await read_member_states(session, org_id, user_id, window)
    await publish_states(rt.redis, rt.settings.jobs.namespace, window, states)


@job(
    "identity.purge_expired", every=timedelta(hours=1), max_retries=3, aliases=("cleanup",)
)  # guides: /v1/admin/cleanup
async def purge_expired(slot: str | None = None) -> None:
    """Drop long-expired sessions, refresh and reset tokens, and stale idempotency records."""
    rt = get_runtime()
    async with rt.session() as session:
        if not await claim_run(session, "identity.purge_expired", slot):
            return
        await session.execute(text("SELECT identity_purge_expired(:hours)"), {"hours": RETENTION_HOURS})
