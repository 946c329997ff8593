"""Identity jobs: republish session state to Redis (safety net for revocations), housekeeping,
and the emails that carry a secret. Those take ids only and mint the secret (reset link,
invitation token, temporary password) when they send, storing only its hash: nothing secret rests
in the outbox, the broker, the dead letters or `just dlq`.

The services request these through the handles (`deliver_invitation.enqueue(db, org_id=...,
invitation_id=...)`), so this module imports no service at load time: the services import it."""

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


@job("identity.deliver_invitation", **_EMAIL)  # type: ignore[arg-type]
async def deliver_invitation(org_id: UUID, invitation_id: UUID) -> None:
    from spotless.domain.identity import invitations

    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        email = await invitations.prepare_delivery(session, rt.settings, invitation_id)
    await _send(email)


@job("identity.deliver_password_reset", **_EMAIL)  # type: ignore[arg-type]
async def deliver_password_reset(user_id: UUID, reset_id: UUID) -> None:
    from spotless.domain.identity import services

    rt = get_runtime()
    async with rt.session() as session:
        email = await services.prepare_reset_email(session, rt.settings, user_id, reset_id)
    await _send(email)


@job("identity.deliver_temp_password", **_EMAIL)  # type: ignore[arg-type]
async def deliver_temp_password(org_id: UUID, user_id: UUID, changed_at: datetime) -> None:
    from spotless.domain.identity import iam

    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        email = await iam.prepare_temp_password_email(session, rt.settings, user_id, changed_at)
    await _send(email)
