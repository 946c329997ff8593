"""To the office: an integration connection needs reconnecting (the provider refused its grant:
revoked in the account's settings, expired, or the password changed). Its syncs have stopped.
Owners and admins are told once per incident, and a member whose own Google calendar it is too
(they are the one who can reconnect it). Never a token: there is none left to show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.public import IntegrationNeedsReconnect
from spotless.domain.messaging.notifications.context import TEMPLATES, with_recipient
from spotless.domain.messaging.public import MessageKind, Recipient, office_recipients, register_kind, request_message
from spotless.lib.events import subscriber
from spotless.lib.jobs.runtime import get_runtime

NEEDS_RECONNECT = "office.integration_needs_reconnect"
PERMISSION = "integrations.manage"
LABELS = {"google": "Google Calendar", "quickbooks": "QuickBooks Online"}


async def _context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    return {
        "integration": params["integration"],
        "account": params.get("account") or "",
        "whose": params["whose"],
        "marked_at": params["marked_at"],
    }


def _sample() -> dict[str, Any]:
    return {
        "integration": LABELS["google"],
        "account": "cleaner@example.com",
        "whose": "a member's own calendar",
        "marked_at": "2026-03-02 14:05 UTC",
    }


register_kind(
    MessageKind(
        name=NEEDS_RECONNECT,
        audience="office",
        transactional=True,
        channels=("email",),
        template="office_integration_needs_reconnect",
        template_dir=TEMPLATES,
        build_context=_context,
        sample_context=with_recipient(_sample),
    )
)


@subscriber(
    IntegrationNeedsReconnect, name="messaging.integration_needs_reconnect", max_retries=10, time_limit_ms=60_000
)
async def integration_needs_reconnect(event: IntegrationNeedsReconnect, event_id: str) -> None:
    params = {
        "integration": LABELS.get(event.provider, event.provider),
        "account": event.external_id or "",
        "whose": "the organisation's" if event.owner_user_id is None else "a member's own calendar",
        "marked_at": event.marked_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    async with get_runtime().session(event.org_id) as session:
        recipients = await office_recipients(session, event.org_id, PERMISSION)
        if event.owner_user_id is not None and all(r.id != event.owner_user_id for r in recipients):
            recipients.append(Recipient(kind="user", id=event.owner_user_id))
        for recipient in recipients:
            await request_message(
                session,
                org_id=event.org_id,
                kind=NEEDS_RECONNECT,
                recipient=recipient,
                subject_type="integration_connection",
                subject_id=event.connection_id,
                send_key=event.marked_at.isoformat(),  # once per incident, however often it is heard
                params=params,
            )
