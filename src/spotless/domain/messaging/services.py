"""Sending a plain email from inside a job that mints its own secret at send time: only the
administrator's temporary-password email (identity.deliver_temp_password) is left on it. Every
other message, password resets and invitations included, is a kind delivered by `messaging.deliver`."""

from __future__ import annotations

from dataclasses import dataclass

from spotless.domain.messaging.email import build_message, send
from spotless.lib.metrics import EMAIL_JOBS
from spotless.settings import Settings


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str
    kind: str


async def deliver(settings: Settings, email: OutgoingEmail) -> str:
    """Send now (raises on SMTP failure, so the job is retried). Bodies carrying a secret are
    never logged, whatever EMAIL_MODE says."""
    message = build_message(settings.email, email.to, email.subject, email.body)
    try:
        outcome = await send(settings.email, message, show_body=False)
    except Exception:
        EMAIL_JOBS.labels(job=email.kind, status="error").inc()
        raise
    EMAIL_JOBS.labels(job=email.kind, status=outcome).inc()
    return outcome
