"""Field evidence through the API (registers `item_id` and `photo_id` for the cross-organisation
and role-matrix tests: ids of the factory organisation's own rows, reached through its booking)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.tenancy import REQUEST_BODIES, register

REQUEST_BODIES[("PUT", "/v1/services/{service_id:uuid}/checklist")] = {"items": ["Kitchen", "Floors"]}
REQUEST_BODIES[("PUT", "/v1/worker/jobs/{booking_id:uuid}/checklist/{item_id:uuid}")] = {"done": True}
REQUEST_BODIES[("POST", "/v1/worker/jobs/{booking_id:uuid}/photos/uploads")] = {
    "kind": "before",
    "content_type": "image/jpeg",
    "size_bytes": 1000,
}


@register("item_id")
async def api_checklist_item_id(client: Any, member: Any) -> str:
    """A checklist item id: the booking in the path is what the route checks first (another
    organisation's, or not the caller's job, is a 404 before any item is looked up)."""
    return str(uuid.uuid4())


@register("photo_id")
async def api_photo_id(client: Any, member: Any) -> str:
    return str(uuid.uuid4())
