"""Sign-in, tokens, sessions and their revocation as a client experiences them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar import get
from sqlalchemy import event

from spotless.app import create_app
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.tokens import issue_access_token, peek_subject
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.identity import (
    DEFAULT_PASSWORD,
    add_member,
    deliver_invitation,
    invite,
    login,
    signup,
    temp_password_in,
)


async def test_login_returns_tokens_and_me_describes_the_caller(client):
    owner = await signup(client, name="Shine Co")
    response = await login(client, owner.email.upper(), owner.password)  # email is case-insensitive
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["organization"]["slug"] == owner.org_slug
    me = (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert me["user"]["email"] == owner.email
    assert me["organization"]["id"] == str(owner.org_id)
    assert me["role"] == "owner"
    assert "users.manage" in me["permissions"] and "core.view" in me["permissions"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    owner = await signup(client)
    wrong = await login(client, owner.email, "not-the-password-1")
    unknown = await login(client, "nobody-here@example.com", "not-the-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["type"] == unknown.json()["type"] == "/problems/invalid-credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_repeated_failures_are_throttled_whether_or_not_the_account_exists(client, settings):
    owner = await signup(client)
    limit = settings.auth.login_max_failures
    for email in (owner.email, "ghost@example.com"):
        for _ in range(limit):
            assert (await login(client, email, "wrong-password-123")).status_code == 401
        blocked = await login(client, email, "wrong-password-123")
        assert blocked.status_code == 429, blocked.text
        assert blocked.json()["type"] == "/problems/too-many-attempts"
        assert 0 < int(blocked.headers["retry-after"]) <= settings.auth.login_lockout_seconds
    # Even the right password waits out the lockout (no oracle for the attacker).
    assert (await login(client, owner.email, owner.password)).status_code == 429
    # Another account is unaffected.
    other = await signup(client)
    assert (await login(client, other.email, other.password)).status_code == 200


async def test_missing_malformed_and_expired_tokens_are_401(client, settings):
    owner = await signup(client)
    assert (await client.get("/v1/auth/me")).status_code == 401
    response = await client.get("/v1/auth/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    me = (await client.get("/v1/auth/me", headers=owner.headers)).json()
    expired, _ = issue_access_token(
        settings,
        user_id=owner.user_id,
        org_id=owner.org_id,
        session_id=me["session_id"],
        email=owner.email,
        session_expires_at=datetime.now(UTC) + timedelta(days=1),
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    assert (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})).status_code == 401
    forged, _ = issue_access_token(
        make_settings(AUTH_SECRET_KEY="some-other-secret-key-of-sufficient-length"),
        user_id=owner.user_id,
        org_id=owner.org_id,
        session_id=me["session_id"],
        email=owner.email,
        session_expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    assert (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_peek_subject_keys_the_rate_limiter_without_io(client, settings):
    owner = await signup(client)
    assert peek_subject(settings, owner.access_token) == f"user:{owner.user_id}"
    assert peek_subject(settings, owner.access_token + "x") is None
    assert peek_subject(settings, "garbage") is None


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(client):
    owner = await signup(client)
    first = await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["refresh_token"] != owner.refresh_token
    new_headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=new_headers)).status_code == 200

    reused = await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert reused.status_code == 401
    assert reused.json()["type"] == "/problems/invalid-refresh-token"
    # The whole session is gone: its access tokens and its newest refresh token alike.
    assert (await client.get("/v1/auth/me", headers=new_headers)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 401
    again = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    # Another sign-in is unaffected.
    fresh = await login(client, owner.email, owner.password)
    assert fresh.status_code == 200


async def test_garbage_refresh_tokens_do_not_revoke_anything(client):
    owner = await signup(client)
    org_hex = owner.refresh_token.split(".")[0]
    for token in ("nope", f"{org_hex}.guessed-secret", "0" * 32 + ".x"):
        response = await client.post("/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401, token
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 200
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})).status_code == 200


async def test_logout_refuses_the_token_on_the_next_request(client):
    owner = await signup(client)
    other_session = (await login(client, owner.email, owner.password)).json()
    assert (await client.post("/v1/auth/logout", headers=owner.headers)).status_code == 204
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})).status_code == 401
    other = {"Authorization": f"Bearer {other_session['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=other)).status_code == 200


async def test_revocation_on_one_node_is_seen_by_another(client, settings):
    """Two app instances (own Redis clients, own pools): a logout through one is refused by the
    other on the very next request."""
    owner = await signup(client)
    async with app_client(create_app(settings)) as node_b:
        assert (await node_b.get("/v1/auth/me", headers=owner.headers)).status_code == 200
        assert (await client.post("/v1/auth/logout", headers=owner.headers)).status_code == 204
        assert (await node_b.get("/v1/auth/me", headers=owner.headers)).status_code == 401


async def test_the_hot_path_makes_no_database_query(client, app, settings):
    """Authentication plus the revocation check is a JWT check and one Redis read."""

    @get("/v1/_whoami", opt={"permission": "core.view"})
    async def whoami(principal: Principal) -> dict:
        return {"user_id": str(principal.user_id), "role": principal.role}

    app.register(whoami)
    owner = await signup(client)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            response = await client.get("/v1/_whoami", headers=owner.headers)
            assert response.status_code == 200, response.text
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", count)
    assert statements == []
    assert response.json() == {"user_id": str(owner.user_id), "role": "owner"}


async def test_sessions_are_checked_in_postgres_when_redis_is_down(client, settings):
    """Redis unreachable: requests still authenticate (Postgres answers) and a revoked session is
    still refused: neither fail-closed nor fail-open."""
    owner = await signup(client)
    member = await add_member(client, owner, "dispatcher")
    down = make_settings(REDIS_URL="redis://127.0.0.1:1/0", AUTH_SESSION_CHECK_TIMEOUT_MS="100")
    async with app_client(create_app(down)) as degraded:
        assert (await degraded.get("/v1/auth/me", headers=member.headers)).status_code == 200
        # The owner deactivates the member on the healthy node...
        assert (await client.post(f"/v1/iam/users/{member.user_id}/logout", headers=owner.headers)).status_code == 200
        # ...and the node without Redis refuses the member at once, from Postgres.
        assert (await degraded.get("/v1/auth/me", headers=member.headers)).status_code == 401
        # Sign-out through the degraded node is recorded in Postgres and takes effect there too.
        assert (await degraded.post("/v1/auth/logout", headers=owner.headers)).status_code == 204
        assert (await degraded.get("/v1/auth/me", headers=owner.headers)).status_code == 401


async def test_with_neither_redis_nor_postgres_a_session_cannot_be_verified_503(client):
    owner = await signup(client)
    outage = make_settings(
        REDIS_URL="redis://127.0.0.1:1/0",
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
        AUTH_SESSION_CHECK_TIMEOUT_MS="100",
    )
    async with app_client(create_app(outage)) as down:
        response = await down.get("/v1/auth/me", headers=owner.headers)
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/service-unavailable"
    assert response.headers["retry-after"]


async def test_a_missing_cache_entry_is_rebuilt_from_postgres(client, redis, settings):
    owner = await signup(client)
    fresh = await signup(client)
    await client.post("/v1/auth/logout", headers=owner.headers)
    await redis.flushdb()  # e.g. Redis restarted without persistence
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=fresh.headers)).status_code == 200
    keys = [k.decode() async for k in redis.scan_iter(match=f"{settings.jobs.namespace}:session:*")]
    assert len(keys) == 2  # both re-cached: one revoked, one active


async def test_several_organisations_require_choosing_one(client):
    first = await signup(client, name="First Org")
    second = await client.post(
        "/v1/auth/signup",
        json={
            "org_name": "Second Org",
            "email": first.email,
            "password": first.password,
            "timezone": "Europe/Paris",
            "currency": "EUR",
        },
    )
    assert second.status_code == 201, second.text
    second_slug = second.json()["organization"]["slug"]
    ambiguous = await login(client, first.email, first.password)
    assert ambiguous.status_code == 400
    body = ambiguous.json()
    assert body["type"] == "/problems/org-slug-required"
    assert sorted(o["slug"] for o in body["organizations"]) == sorted([first.org_slug, second_slug])
    chosen = await login(client, first.email, first.password, org_slug=second_slug)
    assert chosen.status_code == 200
    assert chosen.json()["organization"]["slug"] == second_slug
    # Without the password, the choice reveals nothing.
    assert (await login(client, first.email, "wrong-password-42")).status_code == 401
    assert (await login(client, first.email, first.password, org_slug="not-mine")).status_code == 401


async def test_change_password_ends_other_sessions_and_keeps_this_one(client):
    owner = await signup(client)
    elsewhere = (await login(client, owner.email, owner.password)).json()
    wrong = await client.post(
        "/v1/auth/change-password",
        json={"current_password": "nope-nope-nope", "new_password": "a-new-secret-77"},
        headers=owner.headers,
    )
    assert wrong.status_code == 400
    weak = await client.post(
        "/v1/auth/change-password",
        json={"current_password": owner.password, "new_password": "password123"},
        headers=owner.headers,
    )
    assert weak.status_code == 400 and weak.json()["type"] == "/problems/weak-password"
    ok = await client.post(
        "/v1/auth/change-password",
        json={"current_password": owner.password, "new_password": "a-new-secret-77"},
        headers=owner.headers,
    )
    assert ok.status_code == 204, ok.text
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 200
    other = {"Authorization": f"Bearer {elsewhere['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=other)).status_code == 401
    assert (await login(client, owner.email, owner.password)).status_code == 401
    assert (await login(client, owner.email, "a-new-secret-77")).status_code == 200


async def test_a_temporary_password_must_be_changed_before_anything_else(client):
    owner = await signup(client)
    invitation = await invite(client, owner, "new.hire@example.com", "admin")
    message = await deliver_invitation(owner.org_id, invitation["id"])
    assert message is not None
    temp = temp_password_in(message.body)
    session = (await login(client, "new.hire@example.com", temp)).json()
    assert session["user"]["must_change_password"] is True
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    blocked = await client.get("/v1/org", headers=headers)
    assert blocked.status_code == 403
    assert blocked.json()["type"] == "/problems/password-change-required"
    assert (await client.get("/v1/auth/me", headers=headers)).status_code == 200
    changed = await client.post(
        "/v1/auth/change-password",
        json={"current_password": temp, "new_password": DEFAULT_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204
    assert (await client.get("/v1/org", headers=headers)).status_code == 200


@pytest.mark.slow
async def test_a_real_api_node_refuses_a_session_revoked_through_another(client, settings):
    """Two uvicorn processes sharing Postgres and Redis, as in production."""
    from tests.conftest import test_env
    from tests.support.processes import start_api

    owner = await signup(client)
    nodes = [start_api(test_env()), start_api(test_env())]
    try:
        import httpx

        async with httpx.AsyncClient(timeout=10) as http:
            one, two = (n.base_url for n in nodes)
            assert (await http.get(f"{two}/v1/auth/me", headers=owner.headers)).status_code == 200
            assert (await http.post(f"{one}/v1/auth/logout", headers=owner.headers)).status_code == 204
            assert (await http.get(f"{two}/v1/auth/me", headers=owner.headers)).status_code == 401
    finally:
        for node in nodes:
            node.stop()
