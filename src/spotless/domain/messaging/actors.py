"""Messaging's jobs. `messaging.deliver` delivers one `deliveries` row (requested through
`request_message`, so only after the requesting transaction committed); `messaging.send_email`
is the older plain-email job, kept so messages already queued under it still go out."""

from __future__ import annotations

from uuid import UUID

from spotless.domain.messaging.delivery import DELIVER_JOB, DELIVER_QUEUE, DeadLettered, attempt_delivery
from spotless.domain.messaging.email import build_message, send
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.metrics import EMAIL_JOBS

_SENT_TTL_SECONDS = 7 * 24 * 3600


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


@job("messaging.send_email", queue="email", max_retries=8, min_backoff_ms=5_000, time_limit_ms=60_000)
async def send_email(to: str, subject: str, body: str, kind: str = "generic", dedupe_key: str | None = None) -> None:
    """At-least-once delivery from the broker; `dedupe_key` makes a redelivered message a no-op
    once it has been sent."""
    rt = get_runtime()
    marker = f"{rt.settings.jobs.namespace}:email-sent:{dedupe_key}" if dedupe_key else None
    if marker and await rt.redis.exists(marker):
        EMAIL_JOBS.labels(job=kind, status="duplicate").inc()
        return
    message = build_message(rt.settings.email, to, subject, body)
    try:
        outcome = await send(rt.settings.email, message, show_body=not rt.settings.is_prod)
    except Exception:
        EMAIL_JOBS.labels(job=kind, status="error").inc()
        raise
    if marker:
        await rt.redis.set(marker, "1", ex=_SENT_TTL_SECONDS)
    EMAIL_JOBS.labels(job=kind, status=outcome).inc()
