"""Clients and the places they want cleaned; and the clients context's cross-organisation factories."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.models import Client, ClientAddress
from tests.support.factories._http import created_id
from tests.support.factories.db import add
from tests.support.tenancy import REQUEST_BODIES, register


async def new_client(db: AsyncSession, org_id: UUID, **overrides: Any) -> Client:
    fields: dict[str, Any] = {"name": "Ada Client", "email": "ada@example.com", "tags": []}
    return await add(db, Client(org_id=org_id, **{**fields, **overrides}))


async def new_address(db: AsyncSession, org_id: UUID, client_id: UUID, **overrides: Any) -> ClientAddress:
    fields: dict[str, Any] = {"line1": "1 Main St", "city": "Toronto", "country": "CA", "bedrooms": 2, "bathrooms": 1}
    return await add(db, ClientAddress(org_id=org_id, client_id=client_id, **{**fields, **overrides}))


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------

VICTIM_ADDRESS = {"line1": "1 Victim Way", "city": "Toronto", "country": "CA"}


@register("client_id")
async def api_client_id(client: Any, member: Any) -> str:
    return created_id(
        await client.post("/v1/clients", json={"name": "Victim Client"}, headers=member.headers), "client"
    )


@register("address_id")
async def api_address_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    client_id = ids.get("client_id") or await api_client_id(client, member)
    response = await client.post(f"/v1/clients/{client_id}/addresses", json=VICTIM_ADDRESS, headers=member.headers)
    return created_id(response, "address")


REQUEST_BODIES[("POST", "/v1/clients/{client_id:uuid}/addresses")] = VICTIM_ADDRESS
