"""access_token: a token about to expire is refreshed once however many workers ask at the same
time (the rotated refresh token persisted, sealed); a revoked grant marks the connection
needs_reconnect (committed even though the caller rolls back), the pollers skip it, and the
office gets one notice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from spotless.domain.integrations.public import NeedsReconnect, access_token, claim_due
from spotless.lib.jobs.runtime import JobRuntime, build_runtime
from spotless.lib.sealed import seal, unseal
from tests.conftest import make_settings
from tests.support.fake_oauth import FakeOAuth
from tests.support.identity import signup

pytest_plugins = ["tests.support.fake_oauth"]


@pytest.fixture
async def runtime() -> AsyncIterator[JobRuntime]:
    rt = build_runtime(make_settings(), application_name="spotless-tests-integrations")
    yield rt
    await rt.close()


async def _connection(owner_engine, org_id: uuid.UUID, refresh: str, *, expires_in: timedelta) -> uuid.UUID:
    cid = uuid.uuid4()
    base = f"{org_id}:{cid}"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO integration_connections (id, org_id, created_at, updated_at, provider, status,"
                " access_token_sealed, access_expires_at, refresh_token_sealed, error_count, incident)"
                " VALUES (:id, :org, now(), now(), 'google', 'active', :access, :exp, :refresh, 0, 0)"
            ),
            {
                "id": cid,
                "org": org_id,
                "access": seal("ya29.old-access", aad=f"{base}:access"),
                "exp": datetime.now(UTC) + expires_in,
                "refresh": seal(refresh, aad=f"{base}:refresh"),
            },
        )
    return cid


async def _row(owner_engine, cid: uuid.UUID):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM integration_connections WHERE id = :id"), {"id": cid})).one()


async def test_two_concurrent_calls_refresh_once_and_both_get_a_working_token(
    client, owner_engine, runtime, fake_oauth: FakeOAuth
):
    owner = await signup(client)
    refresh = fake_oauth.issue_refresh()
    cid = await _connection(owner_engine, owner.org_id, refresh, expires_in=timedelta(minutes=2))
    fake_oauth.delay_seconds = 0.3  # both callers are inside access_token while the first refreshes

    async def ask() -> str:
        async with runtime.session(owner.org_id) as session:
            return await access_token(session, cid, org_id=owner.org_id)

    first, second = await asyncio.gather(ask(), ask())
    assert fake_oauth.refreshes == 1
    assert first == second and first in fake_oauth.access
    row = await _row(owner_engine, cid)
    # The rotated refresh token is stored, sealed for this row only; no plain token in the row.
    new_refresh = unseal(row.refresh_token_sealed, aad=f"{owner.org_id}:{cid}:refresh")
    assert new_refresh in fake_oauth.live_refresh and new_refresh != refresh
    assert first not in row.access_token_sealed and new_refresh not in row.refresh_token_sealed
    assert row.access_expires_at > datetime.now(UTC) + timedelta(minutes=50)
    # A fresh token is served without another refresh.
    assert await ask() == first and fake_oauth.refreshes == 1


async def test_a_revoked_grant_needs_reconnect_once_and_the_pollers_skip_it(
    client, owner_engine, runtime, fake_oauth: FakeOAuth
):
    owner = await signup(client)
    cid = await _connection(owner_engine, owner.org_id, "1//never-issued", expires_in=timedelta(seconds=-1))
    for _ in range(2):
        with pytest.raises(NeedsReconnect):
            async with runtime.session(owner.org_id) as session:
                await access_token(session, cid, org_id=owner.org_id)
                # (the caller's transaction rolls back with the exception)
    row = await _row(owner_engine, cid)
    assert row.status == "needs_reconnect" and row.access_token_sealed is None
    async with owner_engine.connect() as conn:
        notices = await conn.scalar(
            text("SELECT count(*) FROM deliveries WHERE kind = 'integration.needs_reconnect' AND subject_id = :id"),
            {"id": cid},
        )
    assert notices == 1
    async with runtime.session() as session:
        assert cid not in {d.id for d in await claim_due(session, "google", 300, 100)}


async def test_claim_due_claims_a_connection_once_until_its_interval_passes(
    client, owner_engine, runtime, fake_oauth: FakeOAuth
):
    owner = await signup(client)
    cid = await _connection(owner_engine, owner.org_id, fake_oauth.issue_refresh(), expires_in=timedelta(hours=1))
    async with runtime.session() as session:
        first = await claim_due(session, "google", 300, 100)
    async with runtime.session() as session:
        again = await claim_due(session, "google", 300, 100)
    assert [(d.org_id, d.id) for d in first] == [(owner.org_id, cid)]
    assert again == []
