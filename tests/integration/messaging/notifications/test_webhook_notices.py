"""An outgoing webhook endpoint disabled (410 Gone, or failing too long) tells the organisation's
owners and admins once per disabling, by email, with the address shown without its query string
(integrators put tokens there); another organisation's office hears nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from spotless.domain.webhooks.events import EndpointDisabled
from spotless.lib.events import emit
from tests.integration.messaging.notifications.conftest import run_deliveries, run_subscriber
from tests.support.factories import AppSessions, arrange
from tests.support.factories.identity import new_member, new_membership, new_org, new_user
from tests.support.messaging import job_runtime

SECRET = "tok_3f9a"


async def test_a_disabled_endpoint_tells_the_owners_once_without_the_urls_secret(
    owner_engine, app_sessions: AppSessions, smtp_server
) -> None:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning")
        other = await new_org(db, name="Other Co")
        owner = await new_user(db)
        await new_membership(db, org.id, owner.id, "owner")
        await new_member(db, org.id, role="dispatcher")  # no integrations.manage: not told
        await new_member(db, other.id, role="owner")
    event = EndpointDisabled(
        org_id=org.id,
        endpoint_id=uuid.uuid4(),
        url=f"https://hooks.example.com/in?token={SECRET}",
        reason="gone",
        disabled_at=datetime(2026, 3, 2, 14, 5, tzinfo=UTC),
    )
    async with app_sessions.scoped(org.id) as session:
        emit(session, event)
    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, "messaging.webhook_endpoint_disabled") == 1  # heard twice
        await run_deliveries(owner_engine, twice=True)
    [mail] = await smtp_server.wait_for(1)
    assert len(mail.rcpt_tos) == 1 and mail.rcpt_tos[0].lower() == owner.email.lower()
    assert "https://hooks.example.com/in" in str(mail.message["Subject"])
    assert "410 Gone" in mail.body and SECRET not in mail.body and SECRET not in str(mail.message["Subject"])
