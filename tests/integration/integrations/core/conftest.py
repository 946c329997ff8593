"""The integrations core against the local fake OAuth server (tests/fakes/oauth_server.py): the
API and the jobs run with settings pointing both providers at it; our token client is the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.fakes.oauth_server import FakeOAuth, consent
from tests.support.identity import Member

registry.import_jobs()


@pytest.fixture
def fake_oauth() -> Iterator[FakeOAuth]:
    fake = FakeOAuth().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def int_settings(fake_oauth: FakeOAuth) -> Settings:
    return make_settings(**fake_oauth.env())


@pytest.fixture
def app(int_settings: Settings) -> Litestar:
    from spotless.app import create_app

    return create_app(int_settings)


@pytest.fixture
async def runtime(int_settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(int_settings, application_name="spotless-tests-integrations")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


async def start(client: Any, member: Member, provider: str, owner: str | None = None) -> httpx.Response:
    body = {} if owner is None else {"owner": owner}
    return await client.post(f"/v1/integrations/{provider}/connect", json=body, headers=member.headers)


async def authorize(url: str) -> dict[str, str]:
    """The member consents at the provider: its redirect's code, state (and realmId)."""
    async with httpx.AsyncClient(follow_redirects=False) as http:
        answer = await http.get(url)
    assert answer.status_code == 302, answer.text
    return consent(answer.headers["location"])


async def connect(client: Any, member: Member, provider: str, owner: str | None = None) -> dict[str, Any]:
    """The whole web flow as the admin page runs it; the connection as the callback answered it."""
    started = await start(client, member, provider, owner)
    assert started.status_code == 200, started.text
    redirect = await authorize(started.json()["authorization_url"])
    body = {"code": redirect["code"], "state": redirect["state"]}
    if "realmId" in redirect:
        body["realm_id"] = redirect["realmId"]
    done = await client.post(f"/v1/integrations/{provider}/callback", json=body, headers=member.headers)
    assert done.status_code == 200, done.text
    return done.json()


async def connection_row(owner_engine: AsyncEngine, connection_id: UUID | str) -> Any:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM integration_connections WHERE id = :c"), {"c": str(connection_id)})
        ).one()


async def row_text(owner_engine: AsyncEngine, table: str) -> str:
    """Every row of `table` as text: what a database dump of it would show."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT t::text FROM {table} t"))
        return "\n".join(r[0] for r in rows)
