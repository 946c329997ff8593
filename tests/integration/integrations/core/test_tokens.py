"""access_token(): refreshed before expiry under the connection's row lock, in a transaction of its
own; QuickBooks' rotated refresh tokens persisted; two workers at once refresh once and both get a
working token; a revoked grant marks the connection needs-reconnect (kept even when the caller
rolls back), stops its syncs and tells the office once, without calling the provider again;
transient failures change nothing; key rotation; tokens never in plain form in rows, jobs or logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.public import (
    NeedsReconnect,
    ProviderUnavailable,
    access_token,
    claim_due,
)
from spotless.domain.integrations.tokens import refresh_aad
from spotless.lib.sealed import SealedError, generate_key
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.fakes.oauth_server import FakeOAuth
from tests.integration.integrations.core.conftest import connection_row, row_text
from tests.integration.messaging.notifications.conftest import run_subscriber
from tests.support.factories import arrange
from tests.support.factories.identity import new_member, new_membership, new_org, new_user
from tests.support.integrations import connect
from tests.support.messaging import deliveries

NOTICE_JOB = "messaging.integration_needs_reconnect"


async def an_org(owner_engine: AsyncEngine) -> tuple[UUID, UUID]:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning")
        owner = await new_user(db)
        await new_membership(db, org.id, owner.id, "owner")
        await new_member(db, org.id, role="dispatcher")  # no integrations.manage: not told
        return org.id, owner.id


async def seeded(
    owner_engine: AsyncEngine, settings: Settings, fake: FakeOAuth, org_id: UUID, provider: str, expires_in: int
) -> tuple[UUID, str, str]:
    access, refresh = fake.issue_grant(provider, scope="s")
    connection_id = await connect(
        owner_engine, settings, org_id, provider, access_token=access, refresh_token=refresh, expires_in=expires_in
    )
    return connection_id, access, refresh


async def token_in_own_session(runtime: Any, org_id: UUID, connection_id: UUID, **kwargs: Any) -> str:
    async with runtime.session(org_id) as session:
        return await access_token(session, connection_id, org_id=org_id, **kwargs)


async def test_a_fresh_token_is_used_as_is(owner_engine, runtime, int_settings, fake_oauth: FakeOAuth) -> None:
    org_id, _ = await an_org(owner_engine)
    connection_id, access, _ = await seeded(owner_engine, int_settings, fake_oauth, org_id, "google", 3_600)
    assert await token_in_own_session(runtime, org_id, connection_id) == access
    assert fake_oauth.refreshes == 0


async def test_an_expiring_quickbooks_token_is_refreshed_and_the_rotated_refresh_token_kept(
    owner_engine, runtime, int_settings, fake_oauth: FakeOAuth
) -> None:
    org_id, _ = await an_org(owner_engine)
    connection_id, old_access, old_refresh = await seeded(
        owner_engine,
        int_settings,
        fake_oauth,
        org_id,
        "quickbooks",
        120,  # inside the 5-minute margin
    )
    new_access = await token_in_own_session(runtime, org_id, connection_id)
    assert new_access != old_access and fake_oauth.valid_access(new_access) and fake_oauth.refreshes == 1
    [grant] = fake_oauth.grants
    assert grant.refresh_token != old_refresh  # rotated: the old one no longer works at the fake
    row = await connection_row(owner_engine, connection_id)
    ring = int_settings.integrations.key_ring()
    assert ring.unseal(row.refresh_token_sealed, aad=refresh_aad(org_id, connection_id)) == grant.refresh_token
    # And the next expiry refreshes with the newest one (the old would be invalid_grant).
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE integration_connections SET access_expires_at = now()"))
    assert fake_oauth.valid_access(await token_in_own_session(runtime, org_id, connection_id))
    assert fake_oauth.refreshes == 2 and (await connection_row(owner_engine, connection_id)).status == "active"


async def test_two_workers_at_once_refresh_once_and_both_get_a_working_token(
    owner_engine, runtime, int_settings, fake_oauth: FakeOAuth
) -> None:
    org_id, _ = await an_org(owner_engine)
    connection_id, _, _ = await seeded(owner_engine, int_settings, fake_oauth, org_id, "quickbooks", 10)
    fake_oauth.refresh_delay = 0.5  # the first refresh is still in flight when the others arrive
    tokens = await asyncio.gather(*(token_in_own_session(runtime, org_id, connection_id) for _ in range(3)))
    assert len(set(tokens)) == 1 and fake_oauth.valid_access(tokens[0])
    assert fake_oauth.refreshes == 1  # without the lock the losers would replay a rotated-away token
    assert (await connection_row(owner_engine, connection_id)).status == "active"


async def test_a_revoked_grant_needs_reconnecting_stops_syncs_and_tells_the_office_once(
    owner_engine, runtime, int_settings, fake_oauth: FakeOAuth
) -> None:
    org_id, owner_id = await an_org(owner_engine)
    other_org, _ = await an_org(owner_engine)
    connection_id, _, refresh = await seeded(owner_engine, int_settings, fake_oauth, org_id, "google", 0)
    healthy, _, _ = await seeded(owner_engine, int_settings, fake_oauth, other_org, "google", 3_600)
    fake_oauth.revoke_grant(refresh)

    # The caller's own transaction rolls back on the exception: the mark is kept anyway.
    with pytest.raises(NeedsReconnect):
        await token_in_own_session(runtime, org_id, connection_id)
    row = await connection_row(owner_engine, connection_id)
    assert row.status == "needs_reconnect" and "invalid_grant" in row.last_error
    calls = len(fake_oauth.token_requests)
    # No retry storm: every later call (two at once included) stops without asking the provider.
    for _ in range(2):
        results = await asyncio.gather(
            token_in_own_session(runtime, org_id, connection_id),
            token_in_own_session(runtime, org_id, connection_id, force_refresh=True),
            return_exceptions=True,
        )
        assert all(isinstance(r, NeedsReconnect) for r in results)
    assert len(fake_oauth.token_requests) == calls
    # The pollers no longer claim it; the other organisation's healthy one still is.
    async with runtime.session() as session:
        claimed = await claim_due(session, "google", 60, 10)
    assert [c.id for c in claimed] == [healthy]
    # One notice to the office (owners and admins), however often the event is heard.
    assert await run_subscriber(owner_engine, NOTICE_JOB) == 1
    notices = [d for d in await deliveries(owner_engine, org_id) if d.kind == "office.integration_needs_reconnect"]
    assert [(d.recipient_id, d.channel) for d in notices] == [(owner_id, "email")]
    assert notices[0].subject_id == connection_id


async def test_a_provider_outage_is_retryable_and_changes_nothing(
    owner_engine, runtime, int_settings, fake_oauth: FakeOAuth
) -> None:
    org_id, _ = await an_org(owner_engine)
    connection_id, _, _ = await seeded(owner_engine, int_settings, fake_oauth, org_id, "quickbooks", 0)
    before = await connection_row(owner_engine, connection_id)
    fake_oauth.fail_next = [503, 429]
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await token_in_own_session(runtime, org_id, connection_id)
    after = await connection_row(owner_engine, connection_id)
    assert after.status == "active" and after.refresh_token_sealed == before.refresh_token_sealed
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE actor_name = :n"), {"n": NOTICE_JOB}) == 0
    assert fake_oauth.valid_access(await token_in_own_session(runtime, org_id, connection_id))


async def test_an_unreachable_provider_is_retryable(owner_engine, runtime, fake_oauth: FakeOAuth) -> None:
    closed = make_settings(**{**fake_oauth.env(), "QUICKBOOKS_OAUTH_BASE_URL": "http://127.0.0.1:9"})
    org_id, _ = await an_org(owner_engine)
    connection_id, _, _ = await seeded(owner_engine, closed, fake_oauth, org_id, "quickbooks", 0)
    async with runtime.session(org_id) as session:
        with pytest.raises(ProviderUnavailable):
            await access_token(session, connection_id, org_id=org_id, settings=closed)
    assert (await connection_row(owner_engine, connection_id)).status == "active"


async def test_key_rotation_old_key_reads_new_key_writes(owner_engine, runtime, fake_oauth: FakeOAuth) -> None:
    old, new = generate_key("k0"), generate_key("k1")
    before = make_settings(**fake_oauth.env(), INTEGRATION_TOKEN_KEYS=old)
    during = make_settings(**fake_oauth.env(), INTEGRATION_TOKEN_KEYS=f"{new},{old}")
    after = make_settings(**fake_oauth.env(), INTEGRATION_TOKEN_KEYS=new)
    org_id, _ = await an_org(owner_engine)
    connection_id, access, _ = await seeded(owner_engine, before, fake_oauth, org_id, "quickbooks", 3_600)
    assert (await connection_row(owner_engine, connection_id)).access_token_sealed.startswith("v1.k0.")

    async def token(cfg: Settings, **kwargs: Any) -> str:
        async with runtime.session(org_id) as session:
            return await access_token(session, connection_id, org_id=org_id, settings=cfg, **kwargs)

    assert await token(during) == access  # the old key, listed second, still opens
    refreshed = await token(during, force_refresh=True)  # a refresh reseals with the new key
    row = await connection_row(owner_engine, connection_id)
    assert row.access_token_sealed.startswith("v1.k1.") and row.refresh_token_sealed.startswith("v1.k1.")
    assert await token(after) == refreshed  # the old key can go now
    with pytest.raises(SealedError):
        await token(before)


async def test_tokens_never_appear_in_rows_jobs_or_logs(
    client, owner_engine, runtime, int_settings, fake_oauth: FakeOAuth, caplog
) -> None:
    from tests.integration.integrations.core.conftest import connect as web_connect
    from tests.support.identity import signup

    caplog.set_level(logging.DEBUG)
    owner = await signup(client)
    made = await web_connect(client, owner, "quickbooks")
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE integration_connections SET access_expires_at = now()"))
    await token_in_own_session(runtime, owner.org_id, UUID(made["id"]))
    fake_oauth.revoke_grant(fake_oauth.grants[0].refresh_token)
    with pytest.raises(NeedsReconnect):
        await token_in_own_session(runtime, owner.org_id, UUID(made["id"]), force_refresh=True)
    issued = [t for g in fake_oauth.grants for t in (g.refresh_token, *g.access_tokens)]
    issued += [r["refresh_token"] for r in fake_oauth.token_requests if "refresh_token" in r]
    assert len(set(issued)) >= 4
    where = {
        "connections": await row_text(owner_engine, "integration_connections"),
        "states": await row_text(owner_engine, "oauth_states"),
        "jobs": await row_text(owner_engine, "job_outbox"),
        "logs": caplog.text,
    }
    for place, content in where.items():
        assert not [t for t in issued if t in content], f"a token in plain form in the {place}"
    assert "connection" in caplog.text  # the logs were captured (the refresh and the refusal are logged)


async def test_ids_given_as_strings_by_a_job_work_too(owner_engine, runtime, int_settings, fake_oauth) -> None:
    org_id, _ = await an_org(owner_engine)
    connection_id, access, _ = await seeded(owner_engine, int_settings, fake_oauth, org_id, "google", 3_600)
    async with runtime.session(org_id) as session:
        assert await access_token(session, str(connection_id), org_id=str(org_id)) == access  # type: ignore[arg-type]
