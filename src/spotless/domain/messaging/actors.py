"""Messaging's job: `messaging.deliver` delivers one `deliveries` row (requested through
`request_message`, so only after the requesting transaction committed). It is the only job that
sends a message of a kind; password resets and invitations included (their secrets are minted
by the kind's hook inside it)."""

from __future__ import annotations

from uuid import UUID

from spotless.domain.messaging.delivery import DELIVER_JOB, DELIVER_QUEUE, DeadLettered, attempt_delivery
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime


@job(
    DELIVER_JOB,
    queue=DELIVER_QUEUE,
    max_retries=8,
    min_backoff_ms=5_000,
    time_limit_ms=120_000,
    max_age_ms=None,
    throws=(DeadLettered,),
)
async def deliver_message(org_id: UUID, delivery_id: UUID) -> None:
    """Idempotent on the delivery row (locked while it is attempted). A raise from the kind's
    context builder retries (Dramatiq's backoff); SMTP's temporary refusals are retried by the
    delivery itself (EMAIL_RETRY_* settings) and end here as DeadLettered when they run out."""
    rt = get_runtime()
    async with rt.session(org_id) as session:
        outcome = await attempt_delivery(session, rt.settings, org_id, delivery_id)
    if outcome.dead:
        raise DeadLettered(f"delivery {delivery_id} failed for good")
