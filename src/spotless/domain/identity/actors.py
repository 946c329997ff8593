"""Identity jobs: republish session state to Redis (safety net for revocations), housekeeping,
and the emails that carry a secret. Those take ids only and mint the secret (reset link,
invitation token, temporary password) when they send, storing only its hash: nothing secret rests
in the outbox, the broker, the dead letters or `just dlq`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from spotless.domain.identity import iam, invitations, services
from spotless.domain.identity.session_cache import publish_states, read_member_states
from spotless.domain.messaging.services import OutgoingEmail, deliver
from spotless.lib.idempotency import RETENTION_HOURS
from spotless.lib.jobs import job
from spotless.lib.jobs.registry import periodic
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import claim_run


@job("identity.sync_sessions", max_retries=20, min_backoff_ms=500, max_backoff_ms=60_000, time_limit_ms=30_000)
async def sync_sessions(org_id: str, user_id: str) -> None:
    """Idempotent: copies the current Postgres truth of one member's sessions to Redis. Retried
    until Redis takes it, so a revocation made while Redis was down still reaches every node."""
    rt = get_runtime()
    window = rt.settings.auth.access_token_ttl_minutes * 60 + 60
    async with rt.session(org_id=org_id) as session:
        states = await read_member_states(session, UUID(org_id), UUID(user_id), window)
    await publish_states(rt.redis, rt.settings.jobs.namespace, window, states)


@job("identity.purge_expired", max_retries=3)
async def purge_expired(slot: str | None = None) -> None:
    """Drop long-expired sessions, refresh and reset tokens, and stale idempotency records."""
    rt = get_runtime()
    async with rt.session() as session:
        if not await claim_run(session, "identity.purge_expired", slot):
            return
        await session.execute(text("SELECT identity_purge_expired(:hours)"), {"hours": RETENTION_HOURS})


periodic("identity.purge_expired", 3600)


_EMAIL = {"queue": "email", "max_retries": 8, "min_backoff_ms": 5_000, "time_limit_ms": 60_000}


async def _send(email: OutgoingEmail | None) -> None:
    # Sent after the transaction that stored the new hash committed: a failed send is retried
    # (and mints again), never an email whose secret was rolled back.
    if email is not None:
        await deliver(get_runtime().settings, email)


@job(invitations.DELIVERY_JOB, **_EMAIL)  # type: ignore[arg-type]
async def deliver_invitation(org_id: str, invitation_id: str) -> None:
    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        email = await invitations.prepare_delivery(session, rt.settings, UUID(invitation_id))
    await _send(email)


@job(services.RESET_JOB, **_EMAIL)  # type: ignore[arg-type]
async def deliver_password_reset(user_id: str, reset_id: str) -> None:
    rt = get_runtime()
    async with rt.session() as session:
        email = await services.prepare_reset_email(session, rt.settings, UUID(user_id), UUID(reset_id))
    await _send(email)


@job(iam.TEMP_PASSWORD_JOB, **_EMAIL)  # type: ignore[arg-type]
async def deliver_temp_password(org_id: str, user_id: str, changed_at: str) -> None:
    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        email = await iam.prepare_temp_password_email(
            session, rt.settings, UUID(user_id), datetime.fromisoformat(changed_at)
        )
    await _send(email)
