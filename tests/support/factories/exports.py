"""Exports through the API (registers `export_id` for the cross-organisation tests)."""

from __future__ import annotations

from typing import Any

from tests.support.tenancy import REQUEST_BODIES, register

REQUEST_BODIES[("POST", "/v1/exports")] = {"kind": "clients"}
REQUEST_BODIES[("POST", "/v1/admin/queue/dlq/replay")] = {
    "kind": "export",
    "ids": ["00000000-0000-0000-0000-000000000000"],
}


@register("export_id")
async def api_export_id(client: Any, member: Any) -> str:
    response = await client.post("/v1/exports", json={"kind": "clients"}, headers=member.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@register("key")
async def storage_key(client: Any, member: Any) -> str:
    """A storage key (GET /v1/storage/{key:path}): any plain one; the route wants a signature."""
    return "exports/none/file.csv"
