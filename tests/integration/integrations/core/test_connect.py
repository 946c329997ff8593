"""Connecting, safely: the OAuth web flow against the fake providers. The state is single use,
bound to the member who started it, expiring, never another organisation's; Google uses PKCE
S256, QuickBooks a state only with its realmId kept; who may connect what; what each sees; and
disconnecting revokes, wipes and tells the other contexts."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.errors import ProviderUnavailable
from spotless.domain.integrations.models import IntegrationConnection, OAuthState
from spotless.lib.jobs.registry import JOBS
from tests.conftest import make_settings
from tests.fakes.oauth_server import FakeOAuth
from tests.integration.integrations.core.conftest import authorize, connect, connection_row, row_text, start
from tests.support.client import app_client
from tests.support.factories import AppSessions
from tests.support.identity import add_member, login, signup


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def callback(client, member, provider: str, redirect: dict[str, str]):
    body = {"code": redirect["code"], "state": redirect["state"]}
    if "realmId" in redirect:
        body["realm_id"] = redirect["realmId"]
    return await client.post(f"/v1/integrations/{provider}/callback", json=body, headers=member.headers)


async def test_a_cleaner_connects_their_own_google_calendar_with_pkce(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine
) -> None:
    owner = await signup(client, name="Sparkle Cleaning")
    cleaner = await add_member(client, owner, "worker")
    started = await start(client, cleaner, "google")
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    params = query_of(url)
    assert url.startswith(f"{fake_oauth.base_url}/google/o/oauth2/v2/auth?")
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert str(owner.org_id) not in params["state"] and len(params["state"]) >= 43
    # Only the state's hash is stored.
    assert params["state"] not in await row_text(owner_engine, "oauth_states")

    redirect = await authorize(url)
    done = await callback(client, cleaner, "google", redirect)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["provider"] == "google" and body["owner"] == "me" and body["status"] == "active"
    assert body["owner_user_id"] == str(cleaner.user_id) and body["external_id"] == "cleaner@example.com"
    assert "access_token" not in done.text and "refresh_token" not in done.text
    # The verifier the token call carried is the one whose S256 the authorization URL showed.
    [exchange] = [r for r in fake_oauth.token_requests if r["grant_type"] == "authorization_code"]
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == params["code_challenge"]
    # Sealed at rest: neither token appears anywhere in the row.
    [grant] = fake_oauth.grants
    dump = await row_text(owner_engine, "integration_connections")
    assert grant.refresh_token not in dump and all(t not in dump for t in grant.access_tokens)
    row = await connection_row(owner_engine, body["id"])
    assert row.refresh_token_sealed.startswith("v1.dev.") and row.access_token_sealed.startswith("v1.dev.")


async def test_quickbooks_is_the_organisations_with_its_realm_and_a_state_only(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine
) -> None:
    owner = await signup(client, name="Books Cleaning")
    started = await start(client, owner, "quickbooks")
    params = query_of(started.json()["authorization_url"])
    assert "code_challenge" not in params and params["scope"] == "com.intuit.quickbooks.accounting"
    redirect = await authorize(started.json()["authorization_url"])
    missing_realm = await client.post(
        "/v1/integrations/quickbooks/callback",
        json={"code": redirect["code"], "state": redirect["state"]},
        headers=owner.headers,
    )
    assert missing_realm.status_code == 400 and missing_realm.json()["errors"][0]["field"] == "realm_id"
    done = await callback(client, owner, "quickbooks", redirect)
    assert done.status_code == 200, done.text
    assert done.json()["external_id"] == fake_oauth.next_realm and done.json()["owner"] == "organization"
    assert done.json()["owner_user_id"] is None


async def test_a_state_is_used_once(client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    started = await start(client, owner, "google", "organization")
    redirect = await authorize(started.json()["authorization_url"])
    assert (await callback(client, owner, "google", redirect)).status_code == 200
    again = await callback(client, owner, "google", redirect)
    assert again.status_code == 400 and again.json()["type"].endswith("/invalid-oauth-state")
    assert "already used" in again.json()["detail"]
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM integration_connections")) == 1


async def test_a_state_refused_by_the_provider_is_spent_too(client, fake_oauth: FakeOAuth) -> None:
    owner = await signup(client)
    started = await start(client, owner, "google", "organization")
    redirect = await authorize(started.json()["authorization_url"])
    bad = await callback(client, owner, "google", {**redirect, "code": "code-not-issued"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/oauth-code-rejected")
    replay = await callback(client, owner, "google", redirect)
    assert replay.status_code == 400 and replay.json()["type"].endswith("/invalid-oauth-state")


async def test_another_members_state_is_refused_and_stays_theirs(client, fake_oauth: FakeOAuth) -> None:
    owner = await signup(client)
    cleaner = await add_member(client, owner, "worker")
    other = await add_member(client, owner, "worker")
    started = await start(client, cleaner, "google")
    redirect = await authorize(started.json()["authorization_url"])
    stolen = await callback(client, other, "google", redirect)
    assert stolen.status_code == 400 and "someone else" in stolen.json()["detail"]
    stolen_by_owner = await callback(client, owner, "google", redirect)
    assert stolen_by_owner.status_code == 400
    mine = await callback(client, cleaner, "google", redirect)
    assert mine.status_code == 200 and mine.json()["owner_user_id"] == str(cleaner.user_id)


async def test_another_organisations_state_is_unknown_there(client, fake_oauth: FakeOAuth) -> None:
    org_a = await signup(client, name="A Cleaning")
    org_b = await signup(client, name="B Cleaning")
    started = await start(client, org_a, "quickbooks")
    redirect = await authorize(started.json()["authorization_url"])
    crossed = await callback(client, org_b, "quickbooks", redirect)
    assert crossed.status_code == 400 and "Unknown state" in crossed.json()["detail"]
    assert (await callback(client, org_a, "quickbooks", redirect)).status_code == 200


async def test_an_expired_state_is_refused(client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    started = await start(client, owner, "google", "organization")
    redirect = await authorize(started.json()["authorization_url"])
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE oauth_states SET expires_at = now() - interval '1 second'"))
    late = await callback(client, owner, "google", redirect)
    assert late.status_code == 400 and "expired" in late.json()["detail"]


async def test_retention_removes_connect_states_a_day_past_their_expiry(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine, runtime
) -> None:
    from spotless.domain.retention.jobs import apply_retention

    owner = await signup(client)
    await start(client, owner, "google", "organization")
    await start(client, owner, "google", "organization")
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE oauth_states SET expires_at = now() - interval '2 days'"
                " WHERE id = (SELECT id FROM oauth_states ORDER BY id LIMIT 1)"
            )
        )
    report = await apply_retention(runtime)
    assert report["oauth_states"] == 1
    async with owner_engine.connect() as conn:
        left = await conn.scalar(text("SELECT count(*) FROM oauth_states WHERE expires_at > now()"))
        total = await conn.scalar(text("SELECT count(*) FROM oauth_states"))
    assert (left, total) == (1, 1)  # the pending connect is still finishable


async def test_who_may_connect_what(client, fake_oauth: FakeOAuth) -> None:
    owner = await signup(client)
    cleaner = await add_member(client, owner, "worker")
    dispatcher = await add_member(client, owner, "dispatcher")
    admin = await add_member(client, owner, "admin")
    assert (await start(client, cleaner, "google", "organization")).status_code == 403
    assert (await start(client, cleaner, "quickbooks")).status_code == 403
    assert (await start(client, dispatcher, "quickbooks", "organization")).status_code == 403
    refused = await start(client, admin, "quickbooks", "me")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "owner"
    assert (await start(client, admin, "quickbooks")).status_code == 200
    assert (await start(client, dispatcher, "google")).status_code == 200  # their own calendar
    assert (await start(client, owner, "outlook")).status_code == 404
    # A member who lost integrations.manage between connect and callback cannot finish an
    # organisation-wide connect (their role is read at the callback too).
    started = await start(client, admin, "google", "organization")
    redirect = await authorize(started.json()["authorization_url"])
    changed = await client.post(f"/v1/iam/users/{admin.user_id}/role", json={"role": "viewer"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    relogged = await login(client, admin.email, admin.password, owner.org_slug)
    admin.access_token = relogged.json()["access_token"]
    assert (await callback(client, admin, "google", redirect)).status_code == 403


async def test_an_unconfigured_provider_cannot_be_connected(owner_engine) -> None:
    from spotless.app import create_app

    async with app_client(create_app(make_settings())) as client:
        owner = await signup(client)
        answer = await start(client, owner, "google")
        assert answer.status_code == 409 and answer.json()["type"].endswith("/integration-not-configured")
        listed = await client.get("/v1/integrations", headers=owner.headers)
        assert {p["name"]: p["configured"] for p in listed.json()["providers"]} == {
            "google": False,
            "quickbooks": False,
        }


async def test_each_sees_what_they_may_and_no_organisation_sees_anothers(
    client, fake_oauth: FakeOAuth, app_sessions: AppSessions
) -> None:
    owner = await signup(client, name="A Cleaning")
    cleaner = await add_member(client, owner, "worker")
    other_org = await signup(client, name="B Cleaning")
    fake_oauth.next_email = "office@a.example"
    await connect(client, owner, "google", "organization")
    await connect(client, owner, "quickbooks")
    fake_oauth.next_email = "cleaner@a.example"
    mine = await connect(client, cleaner, "google")

    office_view = (await client.get("/v1/integrations", headers=owner.headers)).json()["items"]
    assert sorted((c["provider"], c["owner"]) for c in office_view) == [
        ("google", "member"),
        ("google", "organization"),
        ("quickbooks", "organization"),
    ]
    cleaner_view = (await client.get("/v1/integrations", headers=cleaner.headers)).json()["items"]
    assert [(c["id"], c["owner"]) for c in cleaner_view] == [(mine["id"], "me")]
    assert (await client.get("/v1/integrations", headers=other_org.headers)).json()["items"] == []
    # Organisation B cannot disconnect A's (nothing of A's is visible to it).
    assert (await client.delete("/v1/quickbooks", headers=other_org.headers)).status_code == 404
    # The database itself: the application role bound to B sees none of A's rows.
    async with app_sessions.scoped(other_org.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(IntegrationConnection)) == 0
        assert await session.scalar(select(func.count()).select_from(OAuthState)) == 0
    async with app_sessions.scoped(owner.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(IntegrationConnection)) == 3


async def _queued(owner_engine: AsyncEngine, actor: str) -> list[tuple[list[object]]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = :a ORDER BY id"), {"a": actor})
        return [(list(r.args),) for r in rows]


async def test_disconnecting_revokes_wipes_and_tells(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine, runtime
) -> None:
    owner = await signup(client)
    cleaner = await add_member(client, owner, "worker")
    colleague = await add_member(client, owner, "worker")
    made = await connect(client, cleaner, "google")
    [grant] = fake_oauth.grants
    # Another cleaner can neither see nor disconnect it.
    refused = await client.delete(f"/v1/integrations/google?user_id={cleaner.user_id}", headers=colleague.headers)
    assert refused.status_code == 403
    assert (await client.delete("/v1/integrations/google", headers=colleague.headers)).status_code == 404
    assert (await client.delete("/v1/integrations/google", headers=cleaner.headers)).status_code == 204
    # The grant is revoked by a job of the disconnect's commit, which carries the token sealed only.
    [(args,)] = await _queued(owner_engine, "integrations.revoke_grant")
    assert grant.refresh_token not in json.dumps(args) and not grant.revoked
    fake_oauth.fail_revoke = 503
    with pytest.raises(ProviderUnavailable):  # the provider is down: the job is retried
        await JOBS["integrations.revoke_grant"].fn(*args)
    fake_oauth.fail_revoke = None
    await JOBS["integrations.revoke_grant"].fn(*args)
    assert grant.revoked and fake_oauth.revoked_tokens == [grant.refresh_token]
    row = await connection_row(owner_engine, made["id"])
    assert row.status == "disconnected" and row.refresh_token_sealed is None and row.access_token_sealed is None
    assert (await client.get("/v1/integrations", headers=cleaner.headers)).json()["items"] == []
    # Connecting again makes a new live connection; the office may disconnect a member's calendar.
    await connect(client, cleaner, "google")
    assert (
        await client.delete(f"/v1/integrations/google?user_id={cleaner.user_id}", headers=owner.headers)
    ).status_code == 204
    assert (await client.delete("/v1/integrations/google", headers=cleaner.headers)).status_code == 404


async def test_reconnecting_the_same_account_revives_the_connection(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine
) -> None:
    owner = await signup(client)
    first = await connect(client, owner, "quickbooks")
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE integration_connections SET status = 'needs_reconnect'"))
    again = await connect(client, owner, "quickbooks")
    assert again["id"] == first["id"] and again["status"] == "active"
    fake_oauth.next_realm = "4620816365180000000"
    other_company = await connect(client, owner, "quickbooks")
    assert other_company["id"] != first["id"]
    assert (await connection_row(owner_engine, first["id"])).status == "disconnected"


async def test_two_callbacks_at_once_leave_one_live_connection(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine
) -> None:
    import asyncio

    owner = await signup(client)
    redirects = []
    for _ in range(2):
        started = await start(client, owner, "quickbooks")
        redirects.append(await authorize(started.json()["authorization_url"]))
    answers = await asyncio.gather(*(callback(client, owner, "quickbooks", r) for r in redirects))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM integration_connections WHERE status = 'active'")) == 1
        assert await conn.scalar(text("SELECT count(*) FROM oauth_states WHERE used_at IS NULL")) == 0


async def test_a_consent_without_the_calendar_permission_connects_nothing(
    client, fake_oauth: FakeOAuth, owner_engine: AsyncEngine
) -> None:
    owner = await signup(client)
    fake_oauth.granted_scope = "openid email"  # the member unticked the calendar permissions
    started = await start(client, owner, "google")
    refused = await callback(client, owner, "google", await authorize(started.json()["authorization_url"]))
    assert refused.status_code == 400 and refused.json()["type"].endswith("/integration-scope-missing")
    assert "calendar.events" in refused.json()["detail"]
    assert fake_oauth.grants[0].revoked  # what was granted is handed back
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM integration_connections")) == 0
