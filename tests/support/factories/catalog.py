"""Services and their add-ons; and the catalogue's cross-organisation factories."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.models import Service, ServiceAddon
from tests.support.factories._http import created_id
from tests.support.factories.db import add
from tests.support.tenancy import register


async def new_service(db: AsyncSession, org_id: UUID, **overrides: Any) -> Service:
    """A two-hour, 100.00 service (names are unique per organisation: each gets its own)."""
    fields: dict[str, Any] = {
        "name": f"Standard {uuid.uuid4().hex[:6]}",
        "base_price_cents": 10_000,
        "base_minutes": 120,
    }
    return await add(db, Service(org_id=org_id, **{**fields, **overrides}))


async def new_addon(db: AsyncSession, org_id: UUID, service_id: UUID | None = None, **overrides: Any) -> ServiceAddon:
    """An add-on of `service_id`, or offered with every service when it is None."""
    fields: dict[str, Any] = {"name": "Oven", "price_cents": 2_500, "minutes": 30}
    return await add(db, ServiceAddon(org_id=org_id, service_id=service_id, **{**fields, **overrides}))


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------


@register("service_id")
async def api_service_id(client: Any, member: Any) -> str:
    body = {"name": f"Victim Service {uuid.uuid4().hex[:6]}", "base_price_cents": 1000, "base_minutes": 60}
    return created_id(await client.post("/v1/services", json=body, headers=member.headers), "service")


@register("addon_id")
async def api_addon_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    """Under /v1/services/{service_id}/addons the add-on belongs to that service; under
    /v1/addons it is organisation-wide."""
    path = f"/v1/services/{ids['service_id']}/addons" if "service_id" in ids else "/v1/addons"
    body = {"name": "Victim Add-on", "price_cents": 500}
    return created_id(await client.post(path, json=body, headers=member.headers), "add-on")
