"""Messaging's cross-organisation factories (tests/support/tenancy.py) and request bodies: message
kinds are declared by code, not created per organisation, so `kind` names one of the test kinds."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.messaging import AGENDA, NOTICE
from tests.support.tenancy import GLOBAL_PARAMS, REQUEST_BODIES, register


@register("kind")
async def api_kind(client: Any, member: Any, ids: dict[str, str]) -> str:
    """A kind for the route's recipient: a worker's under /v1/workers/..., else a client's."""
    return AGENDA.name if "worker_id" in ids else NOTICE.name


# Every organisation has every kind: /v1/messaging/templates/{kind} is each one's own (see
# tests/integration/messaging/test_routes.py::test_overrides_stay_in_their_organisation).
GLOBAL_PARAMS.add("kind")

REQUEST_BODIES[("PUT", "/v1/clients/{client_id:uuid}/message-preferences/{kind:str}")] = {"channel": "email"}
REQUEST_BODIES[("PUT", "/v1/workers/{worker_id:uuid}/message-preferences/{kind:str}")] = {"channel": "email"}
REQUEST_BODIES[("PUT", "/v1/clients/{client_id:uuid}/sms-consent")] = {"consented": False}
REQUEST_BODIES[("PUT", "/v1/workers/{worker_id:uuid}/sms-consent")] = {"consented": False}
REQUEST_BODIES[("PUT", "/v1/messaging/templates/{kind:str}")] = {"subject": "Hello {{ org.name }}"}


# Twilio's status callback names the organisation and the delivery in its path (its signature is
# the credential): the member's own organisation, and a delivery id nobody has.
@register("org_id")
async def api_org_id(client: Any, member: Any) -> str:
    return str(member.org_id)


@register("delivery_id")
async def api_delivery_id(client: Any, member: Any) -> str:
    return str(uuid.uuid4())
