from __future__ import annotations

import json
import logging

from spotless.app import create_app
from tests.conftest import make_settings


async def test_unknown_route_is_problem_json_with_request_id(client):
    response = await client.get("/v1/nothing-here", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "/problems/not-found"
    assert body["status"] == 404
    assert body["request_id"] == "abc-123"
    assert response.headers["x-request-id"] == "abc-123"


async def test_wrong_method_is_405_problem(client):
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["type"] == "/problems/method-not-allowed"


async def test_request_id_generated_when_absent_and_replaced_when_malformed(client):
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    malformed = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert malformed.headers["x-request-id"] != "bad id\twith spaces"


async def test_access_log_is_json_with_route_template_and_request_id(capsys):
    from tests.support.client import app_client

    async with app_client(create_app(make_settings(LOG_LEVEL="INFO"))) as client:
        await client.get("/readyz", headers={"X-Request-ID": "log-check-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("logger") == "spotless.access"]
    assert access, "no access log line written"
    entry = access[-1]
    assert entry["request_id"] == "log-check-1"
    assert entry["route"] == "/readyz" and entry["method"] == "GET" and entry["status"] == 200
    assert "latency_ms" in entry


async def test_one_access_line_per_request_with_who_asked(capsys):
    from tests.support.client import app_client
    from tests.support.identity import signup

    async with app_client(create_app(make_settings(LOG_LEVEL="INFO"))) as client:
        member = await signup(client)
        capsys.readouterr()
        auth = {"Authorization": f"Bearer {member.access_token}", "X-Request-ID": "log-check-2"}
        assert (await client.get("/v1/clients", headers=auth)).status_code == 200
        assert (await client.get("/v1/clients", headers={"X-Request-ID": "log-check-3"})).status_code == 401
        assert (await client.get("/healthz")).status_code == 200  # liveness probes are not logged
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("logger") == "spotless.access"]
    assert [(e["request_id"], e["status"]) for e in access] == [("log-check-2", 200), ("log-check-3", 401)]
    assert access[0]["org_id"] == str(member.org_id) and access[0]["user_id"] == str(member.user_id)
    assert access[0]["route"] == "/v1/clients" and access[0]["level"] == "info" and access[0]["ts"]


def test_secrets_are_redacted_in_logs(capsys):
    from spotless.lib.logging import configure_logging

    configure_logging("INFO")
    logging.getLogger("spotless.test").info("login", extra={"password": "hunter2", "refresh_token": "abc"})
    out = capsys.readouterr().out
    assert "hunter2" not in out and '"password": "[redacted]"' in out


async def test_metrics_count_requests_by_route_template_and_5xx():
    from tests.support.client import app_client

    # An unreachable database makes /readyz answer 503: a server-side error the 5xx counter must see.
    app = create_app(make_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none"))
    async with app_client(app) as client:
        await client.get("/healthz")
        assert (await client.get("/readyz")).status_code == 503
        response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert "http_requests_total{" in text and 'path="/healthz"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'http_5xx_total{method="GET",path="/readyz"}' in text


async def test_metrics_token_is_enforced():
    from tests.support.client import app_client

    app = create_app(make_settings(METRICS_TOKEN="s3cret-metrics-token"))
    async with app_client(app) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/unauthenticated"
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        assert allowed.status_code == 200


async def test_openapi_schema_is_served(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert "/readyz" in spec["paths"]
    assert spec["paths"]["/healthz"]["get"]["operationId"] == "healthz"


async def test_database_refusals_are_client_errors_not_500(settings):
    """A value Postgres refuses is a 400 and an unanticipated constraint a 409: never a 500."""
    from litestar import post
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    from tests.support.client import app_client

    @post("/test/echo", opt={"public": True}, status_code=200)
    async def echo(data: dict[str, str], db_session: AsyncSession) -> dict[str, str]:
        value = await db_session.scalar(text("SELECT CAST(:v AS text)"), {"v": data["value"]})
        return {"value": value}

    @post("/test/twice", opt={"public": True}, status_code=200)
    async def twice(db_session: AsyncSession) -> dict[str, str]:
        for _ in range(2):  # raw SQL: the server's own unique violation, unanticipated by any code
            await db_session.execute(
                text("INSERT INTO scheduled_runs (job_name, slot, started_at) VALUES ('x', now(), now())")
            )
        return {}

    app = create_app(settings)
    app.register(echo)
    app.register(twice)
    async with app_client(app) as client:
        nul = await client.post("/test/echo", json={"value": "a\u0000b"})
        duplicate = await client.post("/test/twice")
    assert nul.status_code == 400 and nul.json()["type"] == "/problems/validation-error"
    assert duplicate.status_code == 409 and duplicate.json()["type"] == "/problems/conflict"


def _operation(spec: dict, method: str, path: str) -> dict:
    return spec["paths"][path][method.lower()]


async def test_statuses_the_api_answers_are_documented_on_their_operation(client):
    """A 404 for an id in the body (POST /v1/quotes), a 413, a 401: each is in the operation's OpenAPI."""
    import uuid

    from tests.support.identity import signup

    owner = await signup(client)
    spec = (await client.get("/schema/openapi.json")).json()
    unknown = str(uuid.uuid4())
    calls = [
        ("POST", "/v1/quotes", {"service_id": unknown}, owner.headers),
        (
            "POST",
            "/v1/bookings",
            {"client_id": unknown, "address_id": unknown, "service_id": unknown, "starts_at": "2030-01-01T10:00:00Z"},
            owner.headers,
        ),
        ("GET", "/v1/clients/{client_id}", None, owner.headers),
        ("GET", "/v1/clients", None, {}),
    ]
    for method, path, body, headers in calls:
        url = path.replace("{client_id}", unknown)
        response = await client.request(method, url, json=body, headers=headers)
        documented = _operation(spec, method, path)["responses"]
        assert str(response.status_code) in documented, (method, path, response.status_code, sorted(documented))
    assert (await client.post("/v1/quotes", json={"service_id": unknown}, headers=owner.headers)).status_code == 404
    too_large = await client.post(
        "/v1/clients", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', headers=owner.headers
    )
    assert too_large.status_code == 413
    assert "413" in _operation(spec, "POST", "/v1/clients")["responses"]


def test_every_operation_documents_its_problems_and_its_credentials(app):
    spec = app.openapi_schema.to_schema()
    assert spec["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token",
    }
    public = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/status")}
    # An invoice's public link (the token is the credential) and Stripe's signed webhook.
    public |= {("GET", "/v1/pay/{token}"), ("GET", "/v1/pay/{token}/pdf"), ("POST", "/v1/pay/{token}/checkout")}
    public |= {("POST", "/v1/pay/{token}/card-setup"), ("POST", "/v1/payments/stripe/webhook")}
    # One-click unsubscribe (the signed token is the credential) and Twilio's signed webhook.
    public |= {("POST", "/v1/messaging/unsubscribe/{token}"), ("POST", "/v1/messaging/twilio/inbound")}
    # Delivery reports: Twilio's signed status callbacks and SendGrid's signed Event Webhook.
    public |= {
        ("POST", "/v1/messaging/twilio/status/{org_id}/{delivery_id}"),
        ("POST", "/v1/messaging/sendgrid/events"),
    }
    public |= {("POST", "/v1/payments/stripe/webhook")}
    # Google Calendar watch notifications (the channel token is the credential).
    public |= {("POST", "/v1/integrations/google/notifications")}
    # The local storage backend's signed downloads (the signed link is the credential).
    public |= {("GET", "/v1/storage/{key}"), ("POST", "/v1/storage/uploads")}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            where = f"{method.upper()} {path}"
            assert "400" in statuses, where
            if path.startswith("/v1/auth/") and "security" not in op:
                public.add((method.upper(), path))
            if (method.upper(), path) in public:
                assert "security" not in op, where
            else:
                assert op.get("security") == [{"BearerToken": []}], where
                assert {"401", "403", "503"} <= statuses, where
            if "{" in path:
                assert "404" in statuses, where
            if method in ("post", "put", "patch", "delete"):
                assert "409" in statuses, where
            if "requestBody" in op:
                assert {"413", "415"} <= statuses, where
            assert "500" not in statuses and "default" not in statuses, where
    assert "404" in _operation(spec, "POST", "/v1/quotes")["responses"]
    assert "404" in _operation(spec, "GET", "/v1/availability")["responses"]
    assert "404" not in _operation(spec, "GET", "/v1/bookings")["responses"]  # optional ids filter
    assert "503" not in _operation(spec, "GET", "/healthz")["responses"]  # no I/O
