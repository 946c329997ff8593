"""Edge protections: body size, security headers, allowed hosts, CORS."""

from __future__ import annotations

import json

import msgspec

from spotless.app import create_app
from tests.conftest import make_settings
from tests.integration.ratelimit.conftest import build_app, serve


async def test_body_over_the_limit_is_413_problem_with_content_length():
    app = build_app(MAX_REQUEST_BODY_BYTES="1000")
    async with serve(app) as client:
        small = await client.post("/v1/_rl/echo", json={"a": "x" * 100})
        big = await client.post("/v1/_rl/echo", json={"a": "x" * 5000}, headers={"X-Request-ID": "big-1"})
    assert small.status_code == 201
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    body = big.json()
    assert body["type"] == "/problems/payload-too-large" and body["status"] == 413
    assert body["request_id"] == "big-1"


async def test_body_over_the_limit_is_413_when_chunked():
    app = build_app(MAX_REQUEST_BODY_BYTES="1000")
    payload = json.dumps({"a": "x" * 5000}).encode()

    async def chunks():
        for start in range(0, len(payload), 256):
            yield payload[start : start + 256]

    async with serve(app) as client:
        response = await client.post("/v1/_rl/echo", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/payload-too-large"


async def test_security_headers_on_api_answers_and_on_errors():
    app = build_app()
    async with serve(app) as client:
        status = await client.get("/v1/status")
        missing = await client.get("/v1/no-such-thing")
        health = await client.get("/healthz")
    for response in (status, missing, health):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in response.headers
    for response in (status, missing):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert missing.status_code == 404
    assert "cache-control" not in health.headers


async def test_hsts_in_prod():
    # Prod behaviour on the local test services: load_settings refuses localhost in prod, so the
    # prod flag is set on already-validated test settings.
    app = create_app(msgspec.structs.replace(make_settings(), app_env="prod"))
    async with serve(app) as client:
        response = await client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


async def test_only_allowed_hosts_are_served():
    app = build_app(ALLOWED_HOSTS="api.spotless.test,*.tenants.spotless.test")
    async with serve(app, base_url="http://api.spotless.test:8443") as client:
        assert (await client.get("/v1/status")).status_code == 200
        assert (await client.get("/v1/status", headers={"Host": "acme.tenants.spotless.test"})).status_code == 200
        bare = await client.get("/v1/status", headers={"Host": "tenants.spotless.test"})
        evil = await client.get("/v1/status", headers={"Host": "evil.example", "X-Request-ID": "host-1"})
        # Probes reach the pod by address: operational endpoints answer any Host.
        probe = await client.get("/healthz", headers={"Host": "10.2.3.4:8000"})
    assert bare.status_code == 400
    assert evil.status_code == 400
    assert evil.headers["content-type"] == "application/problem+json"
    assert evil.json()["type"] == "/problems/invalid-host"
    assert evil.json()["request_id"] == evil.headers["x-request-id"] == "host-1"
    assert probe.status_code == 200


async def test_cors_allows_configured_origins_and_exposes_rate_limit_headers():
    app = build_app(CORS_ORIGINS="https://app.spotless.test", RATE_LIMIT_PER_MINUTE="100")
    async with serve(app) as client:
        preflight = await client.options(
            "/v1/status",
            headers={
                "Origin": "https://app.spotless.test",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, idempotency-key",
            },
        )
        simple = await client.get("/v1/status", headers={"Origin": "https://app.spotless.test"})
        foreign = await client.get("/v1/status", headers={"Origin": "https://evil.example"})
        foreign_preflight = await client.options(
            "/v1/status", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://app.spotless.test"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "idempotency-key" in allowed
    assert simple.headers["access-control-allow-origin"] == "https://app.spotless.test"
    exposed = {h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")}
    assert {"ratelimit", "ratelimit-policy", "retry-after", "x-request-id"} <= exposed
    assert "access-control-allow-origin" not in foreign.headers
    assert foreign_preflight.status_code == 400 or "access-control-allow-origin" not in foreign_preflight.headers
