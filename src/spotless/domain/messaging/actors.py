"""messaging.send_email: the one way email leaves the system (through the jobs outbox, so an
email is only sent if the transaction that asked for it committed)."""

from __future__ import annotations

from spotless.domain.messaging.email import build_message, send
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.metrics import EMAIL_JOBS

_SENT_TTL_SECONDS = 7 * 24 * 3600


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
