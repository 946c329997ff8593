"""Identity jobs: republish session state to Redis (safety net for revocations), housekeeping,
and the administrator's temporary-password email (EMAIL_TEMP_PASSWORDS), which takes ids only and
mints the password when it sends, storing only its hash. Password-reset and invitation emails
are messages of messaging's one delivery path instead (identity/messages.py): their secrets are
minted by the `messaging.deliver` job through identity's hooks.

The services request these through the handles (`deliver_temp_password.enqueue(db, org_id=...,
user_id=..., changed_at=...)`), so this module imports no service at load time: the services import it."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import text

from spotless.domain.identity.session_cache import publish_states, read_member_states
from spotless.domain.messaging.public import OutgoingEmail, deliver
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


_EMAIL = {"queue": "email", "max_retries": 8, "min_backoff_ms": 5_000, "time_limit_ms": 60_000}


async def _send(email: OutgoingEmail | None) -> None:
    # Sent after the transaction that stored the new hash committed: a failed send is retried
    # (and mints again), never an email whose secret was rolled back.
    if email is not None:
        await deliver(get_runtime().settings, email)


@job("identity.deliver_temp_password", **_EMAIL)  # type: ignore[arg-type]
async def deliver_temp_password(org_id: UUID, user_id: UUID, changed_at: datetime) -> None:
    from spotless.domain.identity import iam

    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        email = await iam.prepare_temp_password_email(session, rt.settings, user_id, changed_at)
    await _send(email)
