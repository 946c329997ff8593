"""/v1/integrations: the OAuth flow against the local fake (PKCE for Google, state single use,
bound to the member, 10 minutes), tenant isolation, and who may connect what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from spotless.app import create_app
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeOAuth
from tests.support.identity import add_member, signup

pytest_plugins = ["tests.support.fake_oauth"]


@pytest.fixture
async def api(fake_oauth: FakeOAuth) -> AsyncIterator[Client]:
    base = fake_oauth.base_url
    settings = make_settings(
        GOOGLE_OAUTH_BASE_URL=base,
        GOOGLE_OAUTH_CLIENT_ID=CLIENT_ID,
        GOOGLE_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        QUICKBOOKS_OAUTH_BASE_URL=base,
        QUICKBOOKS_OAUTH_CLIENT_ID=CLIENT_ID,
        QUICKBOOKS_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
    )
    async with app_client(create_app(settings)) as client:
        yield client


async def _authorize(api, member, fake: FakeOAuth, provider: str = "google") -> tuple[str, str]:
    """Start connecting and play the provider's consent screen: (code, state)."""
    started = await api.post(f"/v1/integrations/{provider}/connect", headers=member.headers)
    assert started.status_code == 201, started.text
    query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    code = f"code-{len(fake.codes)}-{query['state'][0][:6]}"
    fake.codes[code] = query.get("code_challenge", [None])[0]
    return code, query["state"][0]


async def test_google_connects_with_pkce_and_the_state_works_once(api, owner_engine, fake_oauth):
    owner = await signup(api)
    code, state = await _authorize(api, owner, fake_oauth)
    done = await api.post(
        "/v1/integrations/google/callback", json={"code": code, "state": state}, headers=owner.headers
    )
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "active" and done.json()["owner_user_id"] is None
    listed = (await api.get("/v1/integrations", headers=owner.headers)).json()
    assert [c["provider"] for c in listed] == ["google"]
    # The state is spent.
    fake_oauth.codes["again"] = None
    replay = await api.post(
        "/v1/integrations/google/callback", json={"code": "again", "state": state}, headers=owner.headers
    )
    assert replay.status_code == 400 and replay.json()["type"].endswith("oauth-state-invalid")
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM integration_connections"))).one()
        states = (await conn.execute(text("SELECT state_hash FROM oauth_states"))).scalars().all()
    # Neither tokens nor the state are stored in plain form.
    assert not any(t in (row.access_token_sealed + row.refresh_token_sealed) for t in fake_oauth.access)
    assert row.refresh_token_sealed.startswith("v1.") and state not in states


async def test_a_wrong_pkce_verifier_is_refused(api, fake_oauth):
    owner = await signup(api)
    code, state = await _authorize(api, owner, fake_oauth)
    fake_oauth.codes[code] = "not-the-challenge"
    done = await api.post(
        "/v1/integrations/google/callback", json={"code": code, "state": state}, headers=owner.headers
    )
    assert done.status_code == 400 and done.json()["type"].endswith("oauth-code-refused")


async def test_another_members_or_an_expired_state_is_refused(api, owner_engine, fake_oauth):
    owner = await signup(api)
    admin = await add_member(api, owner, "admin")
    code, state = await _authorize(api, owner, fake_oauth)
    other = await api.post(
        "/v1/integrations/google/callback", json={"code": code, "state": state}, headers=admin.headers
    )
    assert other.status_code == 400
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE oauth_states SET expires_at = now() - interval '1 second'"))
    late = await api.post(
        "/v1/integrations/google/callback", json={"code": code, "state": state}, headers=owner.headers
    )
    assert late.status_code == 400 and late.json()["type"].endswith("oauth-state-invalid")


async def test_another_organisation_neither_sees_nor_disconnects_it(api, owner_engine, fake_oauth):
    a = await signup(api)
    b = await signup(api)
    code, state = await _authorize(api, a, fake_oauth)
    assert (
        await api.post("/v1/integrations/google/callback", json={"code": code, "state": state}, headers=a.headers)
    ).status_code == 201
    assert (await api.get("/v1/integrations", headers=b.headers)).json() == []
    assert (await api.delete("/v1/integrations/google", headers=b.headers)).status_code == 404
    gone = await api.delete("/v1/integrations/google", headers=a.headers)
    assert gone.status_code == 204, gone.text
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM integration_connections"))).one()
    assert row.status == "disconnected" and row.refresh_token_sealed is None and row.access_token_sealed is None
    assert fake_oauth.live_refresh == set()  # revoked at the provider


async def test_a_cleaner_connects_only_their_own_calendar(api, fake_oauth):
    owner = await signup(api)
    cleaner = await add_member(api, owner, "worker")
    refused = await api.post("/v1/integrations/quickbooks/connect", headers=cleaner.headers)
    assert refused.status_code == 403
    code, state = await _authorize(api, cleaner, fake_oauth)
    done = await api.post(
        "/v1/integrations/google/callback", json={"code": code, "state": state}, headers=cleaner.headers
    )
    assert done.status_code == 201 and done.json()["owner_user_id"] == str(cleaner.user_id)
    # The owner sees it; the cleaner sees only their own (not an organisation connection).
    assert len((await api.get("/v1/integrations", headers=owner.headers)).json()) == 1
    assert (await api.delete("/v1/integrations/google", headers=cleaner.headers)).status_code == 204
