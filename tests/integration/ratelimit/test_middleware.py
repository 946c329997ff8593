"""The limiter as a client sees it: headers, 429 problems, route classes, callers, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from litestar import Litestar, get
from litestar.middleware.base import DefineMiddleware
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

from spotless.lib.ratelimit import Limiter, RateLimitMiddleware
from tests.conftest import make_settings
from tests.integration.ratelimit.conftest import build_app, serve
from tests.support.identity import signup


def _metric(name: str, labels: dict[str, str]) -> float:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    value = registry.get_sample_value(name, labels)
    if value is None:
        value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_limited_responses_carry_ratelimit_headers():
    app = build_app(RATE_LIMIT_PER_MINUTE="120", RATE_LIMIT_BURST="30")
    async with serve(app) as client:
        first = await client.get("/v1/status")
        second = await client.get("/v1/status")
    assert first.status_code == 200
    assert first.headers["ratelimit-policy"] == '"default";q=120;w=60'
    assert first.headers["ratelimit"] == '"default";r=29;t=1'
    assert second.headers["ratelimit"].startswith('"default";r=28;t=')
    assert "retry-after" not in first.headers


async def test_over_quota_is_429_problem_json_with_retry_after_and_request_id():
    app = build_app(RATE_LIMIT_PER_MINUTE="6", RATE_LIMIT_BURST="3")  # one per 10 s, three at once
    before = _metric("http_429_total", {"bucket": "default"})
    async with serve(app) as client:
        statuses = [(await client.get("/v1/_rl/plain")).status_code for _ in range(3)]
        refused = await client.get("/v1/_rl/plain", headers={"X-Request-ID": "rl-check-1"})
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["x-request-id"] == "rl-check-1"
    retry_after = int(refused.headers["retry-after"])
    assert 9 <= retry_after <= 10
    assert refused.headers["ratelimit"] == f'"default";r=0;t={retry_after}'
    assert refused.headers["ratelimit-policy"] == '"default";q=6;w=60'
    body = refused.json()
    assert body["type"] == "/problems/rate-limited"
    assert body["status"] == 429 and body["title"] == "Too many requests"
    assert body["request_id"] == "rl-check-1"
    assert body["instance"] == "/v1/_rl/plain"
    assert body["policy"] == "default" and body["retry_after"] == retry_after
    assert _metric("http_429_total", {"bucket": "default"}) == before + 1


async def test_exempt_routes_and_preflights_are_never_counted():
    app = build_app(RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="1", CORS_ORIGINS="https://app.example")
    async with serve(app) as client:
        for _ in range(5):
            health = await client.get("/healthz")
            assert health.status_code == 200 and "ratelimit" not in health.headers
            assert (await client.post("/v1/_rl/webhook")).status_code == 201
            assert (await client.get("/metrics")).status_code == 200
            preflight = await client.options(
                "/v1/_rl/plain",
                headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
            )
            assert preflight.status_code in (200, 204)
        assert (await client.get("/v1/_rl/plain")).status_code == 200
        assert (await client.get("/v1/_rl/plain")).status_code == 429


async def test_route_classes_have_their_own_quotas_and_buckets():
    app = build_app(
        RATE_LIMIT_PER_MINUTE="1",
        RATE_LIMIT_BURST="1",
        AUTH_RATE_LIMIT_PER_MINUTE="2",
        ADMIN_ACTION_RATE_LIMIT_PER_MINUTE="3",
        PUBLIC_RATE_LIMIT_PER_MINUTE="4",
        EXPENSIVE_RATE_LIMIT_PER_MINUTE="1",
    )
    expected = {"/v1/_rl/auth": 2, "/v1/_rl/admin": 3, "/v1/_rl/public": 4, "/v1/_rl/export": 1, "/v1/_rl/plain": 1}
    async with serve(app) as client:
        for path, quota in expected.items():
            codes = [(await client.get(path)).status_code for _ in range(quota + 2)]
            assert codes == [200] * quota + [429, 429], path
        last = await client.get("/v1/_rl/admin")
    assert last.headers["ratelimit-policy"] == '"admin";q=3;w=60'
    assert last.json()["policy"] == "admin"


async def test_callers_are_counted_apart_by_address():
    app = build_app(RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="2")
    async with serve(app, peer="203.0.113.10") as one, serve(app, peer="203.0.113.11") as other:
        assert [(await one.get("/v1/_rl/plain")).status_code for _ in range(3)] == [200, 200, 429]
        assert [(await other.get("/v1/_rl/plain")).status_code for _ in range(3)] == [200, 200, 429]


async def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(redis):
    app = build_app(
        RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="3", TRUST_PROXY_HEADERS="true", TRUSTED_PROXY_IPS="10.0.0.1"
    )
    async with serve(app, peer="198.51.100.20") as client:
        codes = [
            (await client.get("/v1/_rl/plain", headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code
            for i in range(6)
        ]
        forwarded = await client.get("/v1/_rl/plain", headers={"Forwarded": "for=192.0.2.99"})
    assert codes == [200, 200, 200, 429, 429, 429]
    assert forwarded.status_code == 429
    keys = sorted(k.decode() for k in await redis.keys("*:rl:*"))
    assert keys == ["spotless-test-main:rl:default:ip:198.51.100.20".replace("main", _worker())]


async def test_behind_a_trusted_proxy_each_client_has_its_own_quota(redis):
    app = build_app(
        RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="1", TRUST_PROXY_HEADERS="true", TRUSTED_PROXY_CIDRS="10.0.0.0/8"
    )
    async with serve(app, peer="10.0.0.5") as proxy:
        # Each client forges a left-most entry; our proxy appended the real address.
        a = [
            (await proxy.get("/v1/_rl/plain", headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.1"})).status_code
            for _ in range(2)
        ]
        b = [
            (await proxy.get("/v1/_rl/plain", headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.2"})).status_code
            for _ in range(2)
        ]
    assert a == [200, 429] and b == [200, 429]
    keys = sorted(k.decode().rsplit(":", 1)[-1] for k in await redis.keys("*:rl:*"))
    assert keys == ["192.0.2.1", "192.0.2.2"]


async def test_login_is_limited_per_account_as_well_as_per_address():
    """The real sign-in route: 'auth' per address, plus the 'auth-account' bucket per account from
    all addresses (5 x the per-address quota, so one address cannot lock the owner out)."""
    app = build_app(AUTH_RATE_LIMIT_PER_MINUTE="2")
    async with serve(app, peer="203.0.113.29") as signer:
        owner = await signup(signer)

    async def attempt(peer: str, email: str) -> httpx.Response:
        async with serve(app, peer=peer) as client:
            return await client.post("/v1/auth/login", json={"email": email, "password": "not-the-password-1"})

    # Guesses for one account spread over addresses: each address stays within its own quota...
    codes = [(await attempt(f"203.0.113.{30 + n // 2}", owner.email)).status_code for n in range(10)]
    assert codes == [401] * 10
    # ...but the account's bucket is spent, from any address; another account is unaffected.
    refused = await attempt("203.0.113.40", owner.email)
    assert refused.status_code == 429
    assert refused.json()["policy"] == "auth-account"
    # Both policies applied to this request: the draft's list form names each one.
    assert refused.headers["ratelimit-policy"] == '"auth-account";q=10;w=60, "auth";q=2;w=60'
    assert refused.headers["ratelimit"].startswith('"auth-account";r=0;t=')
    assert int(refused.headers["retry-after"]) >= 1
    assert (await attempt("203.0.113.40", "bob@example.com")).status_code == 401


async def test_principal_is_the_caller_when_there_is_one():
    """A tiny app with a resolver standing in for identity's token check."""
    settings = make_settings(RATE_LIMIT_ENABLED="true", RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="2")
    limiter = Limiter.from_settings(settings)

    def principal(scope: Any) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-test-user":
                return "user:" + value.decode()
        return None

    @get("/v1/thing", sync_to_thread=False)
    def thing() -> dict[str, bool]:
        return {"ok": True}

    @get("/v1/signin", opt={"rate_limit": "auth"}, sync_to_thread=False)
    def signin() -> dict[str, bool]:
        return {"ok": True}

    app = Litestar(
        [thing, signin],
        middleware=[
            DefineMiddleware(RateLimitMiddleware, limiter=limiter, settings=settings, principal_resolver=principal)
        ],
    )
    try:
        async with serve(app) as client:
            alice = [(await client.get("/v1/thing", headers={"x-test-user": "a"})).status_code for _ in range(3)]
            bob = [(await client.get("/v1/thing", headers={"x-test-user": "b"})).status_code for _ in range(3)]
            anonymous = [(await client.get("/v1/thing")).status_code for _ in range(3)]
            # Sign-in is per address even for a signed-in caller: alice and bob share it here.
            signin_codes = [
                (await client.get("/v1/signin", headers={"x-test-user": user})).status_code for user in "ab" * 6
            ]
    finally:
        await limiter.aclose()
    assert alice == bob == anonymous == [200, 200, 429]
    assert signin_codes == [200] * 10 + [429, 429]


async def test_concurrent_requests_are_counted_exactly():
    app = build_app(RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="50")
    async with serve(app) as client:
        responses = await asyncio.gather(*(client.get("/v1/_rl/plain") for _ in range(200)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 50 and codes.count(429) == 150


async def test_disabled_limiter_adds_nothing():
    app = build_app(RATE_LIMIT_ENABLED="false", RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="1")
    async with serve(app) as client:
        responses = [await client.get("/v1/_rl/plain") for _ in range(5)]
    assert all(r.status_code == 200 and "ratelimit" not in r.headers for r in responses)


def _worker() -> str:
    import os

    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def test_app_keys_signed_in_callers_by_their_token_and_forgeries_by_address(redis):
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    from spotless.domain.identity.tokens import issue_access_token

    app = build_app(RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="2")
    settings = app.state.settings

    def bearer(user_id) -> dict[str, str]:
        token, _ = issue_access_token(
            settings,
            user_id=user_id,
            org_id=uuid4(),
            session_id=uuid4(),
            email="a@example.com",
            session_expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    alice, bob = uuid4(), uuid4()
    async with serve(app) as client:
        for headers in (bearer(alice), bearer(bob), {"Authorization": "Bearer forged.token.value"}):
            codes = [(await client.get("/v1/_rl/plain", headers=headers)).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
        # The forged token fell back to the address, which is now spent.
        assert (await client.get("/v1/_rl/plain")).status_code == 429
    keys = sorted(k.decode().split(":rl:default:")[1] for k in await redis.keys("*:rl:default:*"))
    assert keys == sorted([f"user:{alice}", f"user:{bob}", "ip:203.0.113.10"])
