"""Whatever a client sends, the answer is a 4xx problem, never a 500: far dates, hostile bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup


def _assert_problem(response: Any, status: int = 400, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["type"].startswith("/problems/")
    if field is not None:
        assert field in [e["field"] for e in body.get("errors") or []], body
    return body


# --- dates and instants: one set of bounds for every field and parameter ------------------------


async def test_far_dates_in_query_parameters_are_400_naming_the_parameter(client):
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    worker = world.worker_ids[0]
    service = world.service_id
    for path, field in [
        ("/v1/bookings?date_to=9999-12-31", "date_to"),
        ("/v1/bookings?date_from=0001-01-01", "date_from"),
        (f"/v1/availability?service_id={service}&date_from=9999-12-30&date_to=9999-12-31", "date_from"),
        (f"/v1/availability?service_id={service}&date_from=2030-01-01&date_to=9999-12-31", "date_to"),
        ("/v1/worker/jobs?date=9999-12-31", "date"),
        ("/v1/admin/audit?created_after=9999-12-31T23:59:59Z", "created_after"),
        ("/v1/admin/audit?created_before=0001-01-01T00:00:00%2B01:00", "created_before"),
        (f"/v1/workers/{worker}/time-off?from=9999-12-31T23:00:00Z", "from"),
        (f"/v1/workers/{worker}/time-off?to=0001-01-01T00:00:00Z", "to"),
    ]:
        body = _assert_problem(await client.get(path, headers=owner.headers), 400, field)
        assert body["type"] == "/problems/validation-error"


async def test_dates_inside_the_bounds_still_work(client):
    owner = await signup(client)
    ok = await client.get("/v1/bookings?date_from=2000-01-01&date_to=2100-12-31", headers=owner.headers)
    assert ok.status_code == 200, ok.text
    naive = await client.get("/v1/admin/audit?created_after=2030-01-01T00:00:00", headers=owner.headers)
    _assert_problem(naive, 400, "created_after")


async def test_far_dates_in_bodies_are_400_naming_the_field(client):
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    worker = world.worker_ids[0]
    far = world.booking(next_weekday(2), 10, starts_at="9999-12-31T23:00:00-05:00")
    _assert_problem(await client.post("/v1/bookings", json=far, headers=owner.headers), 400, "starts_at")

    booking = await client.post("/v1/bookings", json=world.booking(next_weekday(2), 10), headers=owner.headers)
    assert booking.status_code == 201, booking.text
    moved = await client.post(
        f"/v1/bookings/{booking.json()['id']}/reschedule",
        json={"starts_at": "9999-12-31T23:59:59+14:00"},
        headers=owner.headers,
    )
    _assert_problem(moved, 400, "starts_at")

    time_off = {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59Z"}
    _assert_problem(
        await client.post(f"/v1/workers/{worker}/time-off", json=time_off, headers=owner.headers), 400, "ends_at"
    )

    series = {
        "client_id": str(world.client_id),
        "address_id": str(world.address_id),
        "service_id": str(world.service_id),
        "frequency": "weekly",
        "start_date": next_weekday(2).isoformat(),
        "start_time": "09:00",
        "count": 2,
    }
    _assert_problem(
        await client.post("/v1/series", json={**series, "start_date": "9999-12-31"}, headers=owner.headers),
        400,
        "start_date",
    )
    _assert_problem(
        await client.post("/v1/series", json={**series, "until": "9999-12-31"}, headers=owner.headers), 400, "until"
    )
    created = await client.post("/v1/series", json=series, headers=owner.headers)
    assert created.status_code == 201, created.text
    series_id = created.json()["series"]["id"]
    edit = await client.patch(
        f"/v1/series/{series_id}/occurrences/{series['start_date']}",
        json={"scope": "this", "move_to": "9999-12-31"},
        headers=owner.headers,
    )
    _assert_problem(edit, 400, "move_to")
    far_path = await client.patch(
        f"/v1/series/{series_id}/occurrences/9999-12-31", json={"scope": "this"}, headers=owner.headers
    )
    _assert_problem(far_path, 400, "occurrence_date")


def test_openapi_documents_the_bounds(app):
    spec = app.openapi_schema.to_schema()
    params = {p["name"]: p for p in spec["paths"]["/v1/bookings"]["get"]["parameters"]}
    assert "'format': 'date'" in str(params["date_to"]) and "2100-12-31" in str(params["date_to"])
    starts_at = spec["components"]["schemas"]["BookingCreate"]["properties"]["starts_at"]
    assert starts_at["format"] == "date-time" and "2100-12-31" in starts_at["description"]


# --- hostile bodies --------------------------------------------------------------------------

HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "deep arrays": (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    "deep arrays, unclosed": (b"[" * 10_000, "application/json"),
    "deep objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "deep inside a field": (b'{"name": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "application/json"),
    "invalid utf-8": (b'{"name": "\xff\xfe\xfa"}', "application/json"),
    "lone surrogate": (b'{"name": "\\ud800"}', "application/json"),
    "huge integer": (b'{"name": "x", "base_minutes": ' + b"9" * 5_000 + b"}", "application/json"),
    "huge float": (b'{"name": "x", "base_minutes": 1e400}', "application/json"),
    "int64 overflow": (b'{"name": "x", "base_minutes": 9223372036854775808}', "application/json"),
    "nul byte": (b'{"name": "a\\u0000b", "org_name": "a\\u0000b"}', "application/json"),
    "truncated": (b'{"name": ', "application/json"),
    "not json": (b"name=x&org_name=y", "application/x-www-form-urlencoded"),
    "xml": (b"<name>x</name>", "application/xml"),
    "empty": (b"", "application/json"),
    "bare string": (b'"hello"', "application/json"),
    "null": (b"null", "application/json"),
    "array": (b"[1, 2, 3]", "application/json"),
    "binary": (bytes(range(256)), "application/octet-stream"),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
async def test_hostile_bodies_answer_400_problem_on_every_kind_of_route(client, name):
    owner = await signup(client)
    body, content_type = HOSTILE_BODIES[name]
    headers = {**owner.headers, "Content-Type": content_type}
    world = await api_world(client, owner, workers=1)
    routes = [
        ("POST", "/v1/services"),  # a typed Struct body
        ("POST", "/v1/clients"),
        ("POST", "/v1/bookings"),
        ("POST", "/v1/quotes"),
        ("PUT", f"/v1/workers/{world.worker_ids[0]}/hours"),
        ("PATCH", f"/v1/services/{world.service_id}"),
        ("PATCH", "/v1/org"),
    ]
    # Anything that cannot be the JSON body the route expects is a 400; a body of another type a 415.
    status = 400 if content_type == "application/json" else 415
    for method, path in routes:
        response = await client.request(method, path, content=body, headers=headers)
        _assert_problem(response, status)
    # Public routes decode the body before any authentication.
    for path in ("/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh"):
        _assert_problem(await client.post(path, content=body, headers={"Content-Type": content_type}), status)


async def test_json_media_types_are_accepted_and_others_refused(client):
    owner = await signup(client)
    body = b'{"name": "Ada"}'
    for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        created = await client.post(
            "/v1/clients", content=body, headers={**owner.headers, "Content-Type": content_type}
        )
        assert created.status_code == 201, (content_type, created.text)
    no_type = await client.post("/v1/clients", content=body, headers=owner.headers)
    assert no_type.status_code == 201, no_type.text
    for content_type in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        refused = await client.post(
            "/v1/clients", content=body, headers={**owner.headers, "Content-Type": content_type}
        )
        assert _assert_problem(refused, 415)["type"] == "/problems/unsupported-media-type"


async def test_deep_nesting_reports_what_is_wrong(client):
    response = await client.post("/v1/auth/login", content=b"[" * 10_000, headers={"Content-Type": "application/json"})
    body = _assert_problem(response, 400)
    assert "nested too deeply" in body["detail"]


async def test_hostile_values_inside_otherwise_valid_bodies_are_400(client):
    owner = await signup(client)
    service = {"name": "Deep clean", "base_price_cents": 10_000, "base_minutes": 120}
    cases = [
        ("/v1/clients", {"name": "a\u0000b"}),
        ("/v1/clients", {"name": "a\ud800b"}),
        ("/v1/clients", {"name": "Ada", "notes": "\udfff"}),
        ("/v1/services", {**service, "name": "x\u0000"}),
        ("/v1/services", {**service, "base_price_cents": 10**30}),
        ("/v1/services", {**service, "base_minutes": 2**63}),
        ("/v1/services", {**service, "base_minutes": -(2**63) - 1}),
        ("/v1/services", {**service, "base_minutes": 1.5}),
        ("/v1/workers", {"name": "Bo", "hourly_rate_cents": 2**70}),
        ("/v1/teams", {"name": "\u0000"}),
    ]
    for path, body in cases:
        raw = json.dumps(body).encode()
        response = await client.post(path, content=raw, headers={**owner.headers, "Content-Type": "application/json"})
        _assert_problem(response, 400)


async def test_hostile_query_strings_and_headers_are_never_5xx(client):
    owner = await signup(client)
    for url in [
        "/v1/clients?q=%ff%fe",
        "/v1/clients?q=%00",
        "/v1/clients?limit=99999999999999999999999",
        "/v1/clients?limit=-1&offset=-5",
        "/v1/bookings?status=%00",
        "/v1/bookings?date_from=%ff",
        "/v1/bookings?worker_id=not-a-uuid",
        "/v1/admin/audit?resource_id=%00",
        "/v1/admin/audit?action=" + "a" * 5000,
        "/v1/clients/%00",
    ]:
        response = await client.get(url, headers=owner.headers)
        assert response.status_code < 500, (url, response.status_code, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), url
    weird = {**owner.headers, "Idempotency-Key": "k" * 5000, "Content-Type": "application/json"}
    response = await client.post("/v1/clients", content=b'{"name": "Ada"}', headers=weird)
    assert response.status_code in (201, 400), response.text
