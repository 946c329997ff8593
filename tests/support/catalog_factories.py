"""Test helpers for clients, workforce and catalog: an organisation arranged as the table owner,
an application-role session scoped to it by RLS (what a request gets), and the cross-organisation
resource factories registered with tests/support/tenancy.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.settings import Settings
from tests.support.tenancy import REQUEST_BODIES, register


async def make_org(
    owner_engine: AsyncEngine, *, timezone: str = "America/Vancouver", currency: str = "CAD", tax_rate_bps: int = 500
) -> UUID:
    org_id = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO organization (id, name, slug, timezone, currency, locale, business_hours, tax_rate_bps,"
                " created_at, updated_at) VALUES (:id, :name, :slug, :tz, :cur, 'en-CA', '{}'::jsonb, :tax, now(), now())"
            ),
            {
                "id": org_id,
                "name": f"Org {org_id.hex[:6]}",
                "slug": f"org-{org_id.hex[:12]}",
                "tz": timezone,
                "cur": currency,
                "tax": tax_rate_bps,
            },
        )
    return org_id


async def make_member(owner_engine: AsyncEngine, org_id: UUID, role: str = "worker", *, active: bool = True) -> UUID:
    """A user with a membership, arranged directly (service-level tests; HTTP tests use signup)."""
    user_id = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, email, full_name, password_hash, must_change_password, created_at, updated_at)"
                " VALUES (:id, :email, 'Test', 'x', false, now(), now())"
            ),
            {"id": user_id, "email": f"{user_id.hex[:10]}@example.com"},
        )
        await conn.execute(
            text(
                "INSERT INTO memberships (id, user_id, org_id, role, is_active, created_at, updated_at)"
                " VALUES (:id, :user_id, :org_id, :role, :active, now(), now())"
            ),
            {"id": uuid.uuid4(), "user_id": user_id, "org_id": org_id, "role": role, "active": active},
        )
    return user_id


class AppSessions:
    """Sessions as the application role (RLS in force), each bound to one organisation."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings.database, application_name="spotless-tests", pool_size=2)
        self.factory = session_factory(self.engine)

    @asynccontextmanager
    async def scoped(self, org_id: UUID) -> AsyncIterator[AsyncSession]:
        """One transaction for `org_id`, committed on success (like a request)."""
        async with self.factory() as session:
            bind_org(session, org_id)
            async with session.begin():
                yield session

    async def aclose(self) -> None:
        await self.engine.dispose()


@pytest.fixture(scope="session")
async def app_sessions(database: str, settings: Settings) -> AsyncIterator[AppSessions]:
    sessions = AppSessions(settings)
    yield sessions
    await sessions.aclose()


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------


def _created(response: Any, what: str) -> str:
    assert response.status_code == 201, f"{what}: {response.status_code} {response.text}"
    return str(response.json()["id"])


@register("client_id")
async def make_client(client: Any, member: Any) -> str:
    return _created(await client.post("/v1/clients", json={"name": "Victim Client"}, headers=member.headers), "client")


@register("address_id")
async def make_address(client: Any, member: Any, ids: dict[str, str]) -> str:
    client_id = ids.get("client_id") or await make_client(client, member)
    body = {"line1": "1 Victim Way", "city": "Toronto", "country": "CA"}
    return _created(
        await client.post(f"/v1/clients/{client_id}/addresses", json=body, headers=member.headers), "address"
    )


@register("worker_id")
async def make_worker(client: Any, member: Any, ids: dict[str, str] | None = None) -> str:
    """Under /v1/teams/{team_id}/members/{worker_id} the worker is made a member of that team,
    so the owner's own control call finds the membership."""
    worker_id = _created(
        await client.post("/v1/workers", json={"name": "Victim Worker"}, headers=member.headers), "worker"
    )
    if ids and "team_id" in ids:
        response = await client.post(
            f"/v1/teams/{ids['team_id']}/members", json={"worker_id": worker_id}, headers=member.headers
        )
        assert response.status_code == 201, response.text
    return worker_id


@register("time_off_id")
async def make_time_off(client: Any, member: Any, ids: dict[str, str]) -> str:
    worker_id = ids.get("worker_id") or await make_worker(client, member, {})
    body = {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}
    return _created(
        await client.post(f"/v1/workers/{worker_id}/time-off", json=body, headers=member.headers), "time off"
    )


# team id -> a worker of the same organisation, for bodies that must name one (add member).
_TEAM_WORKER: dict[str, str] = {}


@register("team_id")
async def make_team(client: Any, member: Any) -> str:
    worker_id = await make_worker(client, member)
    body = {"name": f"Victim Team {uuid.uuid4().hex[:6]}"}
    team_id = _created(await client.post("/v1/teams", json=body, headers=member.headers), "team")
    _TEAM_WORKER[team_id] = worker_id
    return team_id


@register("service_id")
async def make_service(client: Any, member: Any) -> str:
    body = {"name": f"Victim Service {uuid.uuid4().hex[:6]}", "base_price_cents": 1000, "base_minutes": 60}
    return _created(await client.post("/v1/services", json=body, headers=member.headers), "service")


@register("addon_id")
async def make_addon(client: Any, member: Any, ids: dict[str, str]) -> str:
    """Under /v1/services/{service_id}/addons the add-on belongs to that service; under
    /v1/addons it is organisation-wide."""
    path = f"/v1/services/{ids['service_id']}/addons" if "service_id" in ids else "/v1/addons"
    return _created(
        await client.post(path, json={"name": "Victim Add-on", "price_cents": 500}, headers=member.headers), "add-on"
    )


REQUEST_BODIES[("POST", "/v1/clients/{client_id:uuid}/addresses")] = {
    "line1": "1 Victim Way",
    "city": "Toronto",
    "country": "CA",
}
REQUEST_BODIES[("POST", "/v1/teams/{team_id:uuid}/members")] = lambda ids: {
    "worker_id": _TEAM_WORKER.get(ids["team_id"], str(uuid.uuid4()))
}
REQUEST_BODIES[("PUT", "/v1/workers/{worker_id:uuid}/hours")] = {
    "hours": [{"weekday": 0, "start": "09:00", "end": "17:00"}]
}
REQUEST_BODIES[("POST", "/v1/workers/{worker_id:uuid}/time-off")] = {
    "starts_at": "2030-01-01T00:00:00Z",
    "ends_at": "2030-01-02T00:00:00Z",
}
