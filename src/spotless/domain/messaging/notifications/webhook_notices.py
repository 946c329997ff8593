"""To the office: an outgoing webhook endpoint was disabled (it answered 410 Gone, or kept failing
for WEBHOOK_DISABLE_AFTER_HOURS). Its owners and admins are told once per disabling, so an
integrator's broken receiver never goes quiet unnoticed. The address is shown without its query
string or credentials: integrators put tokens there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.notifications.context import TEMPLATES, with_recipient
from spotless.domain.messaging.public import MessageKind, office_recipients, register_kind, request_message
from spotless.domain.webhooks.events import EndpointDisabled
from spotless.lib.events import subscriber
from spotless.lib.jobs.runtime import get_runtime

ENDPOINT_DISABLED = "office.webhook_endpoint_disabled"
PERMISSION = "integrations.manage"
REASONS = {
    "gone": "it answered 410 Gone (the receiver says it no longer exists)",
    "failing": "every delivery to it has failed for too long",
}


def shown_url(url: str) -> str:
    """scheme://host[:port]/path: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def _context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    reason = str(params.get("reason") or "failing")
    return {"url": params["url"], "reason": REASONS.get(reason, reason), "disabled_at": params["disabled_at"]}


def _sample() -> dict[str, Any]:
    return {
        "url": "https://hooks.example.com/spotless",
        "reason": REASONS["gone"],
        "disabled_at": "2026-03-02 14:05 UTC",
    }


register_kind(
    MessageKind(
        name=ENDPOINT_DISABLED,
        audience="office",
        transactional=True,
        channels=("email",),
        template="office_webhook_endpoint_disabled",
        template_dir=TEMPLATES,
        build_context=_context,
        sample_context=with_recipient(_sample),
    )
)


@subscriber(EndpointDisabled, name="messaging.webhook_endpoint_disabled", max_retries=10, time_limit_ms=60_000)
async def endpoint_disabled(event: EndpointDisabled, event_id: str) -> None:
    params = {
        "url": shown_url(event.url),
        "reason": event.reason,
        "disabled_at": event.disabled_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    async with get_runtime().session(event.org_id) as session:
        for recipient in await office_recipients(session, event.org_id, PERMISSION):
            await request_message(
                session,
                org_id=event.org_id,
                kind=ENDPOINT_DISABLED,
                recipient=recipient,
                subject_type="webhook_endpoint",
                subject_id=event.endpoint_id,
                send_key=event.disabled_at.isoformat(),  # once per disabling, however often it is heard
                params=params,
            )
