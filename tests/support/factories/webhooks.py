"""Outgoing webhooks' factories: an endpoint through the API, a message of it in the database (a
message only ever comes from an event; the delivery tests make them that way)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from uuid import UUID

from sqlalchemy import text

from spotless.domain.webhooks.models import WebhookMessage
from tests.support.factories.db import add
from tests.support.factories.stripe_billing import _admin
from tests.support.tenancy import REQUEST_BODIES, register

# A public address written as a literal: registering it needs no lookup (the suites run offline).
PUBLIC_URL = "https://93.184.215.14/hooks/spotless"


@register("endpoint_id")
async def api_endpoint_id(client: Any, member: Any) -> str:
    # Suites sharing one organisation for many routes (the role matrix) would pass the
    # per-organisation limit: the oldest endpoints make room.
    async with _admin() as db:
        await db.execute(
            text(
                "DELETE FROM webhook_endpoints WHERE org_id = :o AND id NOT IN"
                " (SELECT id FROM webhook_endpoints WHERE org_id = :o ORDER BY created_at DESC LIMIT 10)"
            ),
            {"o": member.org_id},
        )
    response = await client.post(
        "/v1/webhooks/endpoints",
        json={"url": PUBLIC_URL, "event_types": ["client.archived", "booking.created"]},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@register("message_id")
async def api_message_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    endpoint_id = UUID(ids.get("endpoint_id") or await api_endpoint_id(client, member))
    body = {"type": "client.archived", "timestamp": "2026-01-01T00:00:00Z", "data": {"client_id": str(uuid.uuid4())}}
    async with _admin() as db:
        message = await add(
            db,
            WebhookMessage(
                org_id=member.org_id,
                endpoint_id=endpoint_id,
                event_id=str(uuid.uuid4()),
                event_type="client.archived",
                body=json.dumps(body),
                status="failed",
                attempts=10,
            ),
        )
    return str(message.id)


REQUEST_BODIES[("POST", "/v1/webhooks/endpoints/{endpoint_id:uuid}/replay")] = {
    "since": "2026-01-01T00:00:00Z",
    "until": "2026-01-15T00:00:00Z",
}
REQUEST_BODIES[("PATCH", "/v1/webhooks/endpoints/{endpoint_id:uuid}")] = {"description": "renamed"}
