"""/metrics: documented series from the first scrape, bounded size, the token in prod.

The size figure in the notes comes from running the walk alone (a fresh metrics directory):
`pytest -s tests/integration/system/test_metrics.py::test_metrics_stay_small_after_every_route_answers_every_status`."""

from __future__ import annotations

import asyncio
import re
import tempfile
import urllib.request
import uuid
from collections import defaultdict

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from prometheus_client.parser import text_string_to_metric_families

from spotless.app import create_app
from spotless.lib import metrics
from tests.conftest import test_env
from tests.support import processes
from tests.support.client import Client, app_client
from tests.support.identity import signup

_PARAM = re.compile(r"\{(\w+):(\w+)\}")
_SAMPLE_VALUES = {"uuid": lambda: str(uuid.uuid4()), "date": lambda: "2026-03-02", "int": lambda: "1"}


def _routes(app: Litestar, *, with_docs: bool = False) -> list[tuple[str, str]]:
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and (with_docs or not route.path.startswith("/schema")):
                for method in set(handler.http_methods) - {"OPTIONS", "HEAD"}:
                    found.add((method, route.path))
    return sorted(found)


def _concrete(path: str) -> str:
    return _PARAM.sub(lambda m: _SAMPLE_VALUES.get(m.group(2), lambda: "x")(), path)


async def _walk(client: Client, app: Litestar, headers: dict[str, str]) -> None:
    """Every route, as the caller and anonymously, with an empty and a malformed body: a spread of
    statuses (200, 201, 204, 400, 401, 403, 404, 405, 409, 415, 422 ...) per route, as a fuzzer or
    a busy day would leave."""
    for method, path in _routes(app):
        if path == "/metrics":
            continue
        url = _concrete(path)
        for auth in (headers, {}):
            await client.request(method, url, headers=auth, json={} if method in ("POST", "PUT", "PATCH") else None)
            await client.request(method, url, headers={**auth, "content-type": "application/json"}, content=b"{")
            await client.request(method, url + "?limit=0&date_from=bad", headers=auth)


def _series(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append(sample.labels)
    return out


async def test_metrics_stay_small_after_every_route_answers_every_status(app: Litestar) -> None:
    async with app_client(app) as client:
        owner = await signup(client)
        await _walk(client, app, owner.headers)
        response = await client.get("/metrics")
    assert response.status_code == 200
    series = _series(response.text)
    routes = len(_routes(app, with_docs=True))
    print(f"\n/metrics after every route x statuses: {len(response.content)} bytes, {routes} routes")
    by_name = {name: len(labels) for name, labels in series.items()}
    for name, count in sorted(by_name.items(), key=lambda item: -item[1])[:8]:
        print(f"  {count:6d} {name}")
    # Latency is per route, not per route and status: a histogram's buckets are multiplied by each
    # label value, and the status code was what made a scrape hundreds of kilobytes.
    buckets = series["http_request_duration_seconds_bucket"]
    assert buckets and all("status_code" not in labels for labels in buckets)
    per_route: dict[tuple[str, str], int] = defaultdict(int)
    for labels in buckets:
        per_route[(labels["method"], labels["path"])] += 1
    # Exactly one set of buckets per route (other tests' stand-in routes may share this directory).
    assert set(per_route.values()) == {len(metrics.HTTP_DURATION._upper_bounds)}
    assert all("app_name" not in labels for labels in series["http_requests_total"])
    # One series per route and status for the request counter, one per route for the others. (The
    # byte size depends on what else ran in this test session's metrics directory: printed above.)


def _scrape(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        return str(response.read().decode())


async def test_a_fresh_api_process_exports_every_documented_series():
    """The operations guides alert on these; before anything happened each must already read 0."""
    env = test_env(PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="spotless-prom-fresh-"))
    api = await asyncio.to_thread(processes.start_api, env)
    try:
        text = await asyncio.to_thread(_scrape, api.base_url)
    finally:
        api.stop()
    series = _series(text)
    expected: list[tuple[str, dict[str, str]]] = [
        ("http_5xx_total", {"method": "GET", "path": "/v1/bookings"}),
        ("http_5xx_total", {"method": "POST", "path": "/v1/bookings/{booking_id}/cancel"}),
        ("webhook_errors_total", {}),
        *(("webhook_events_total", {"result": r}) for r in ("processed", "ignored", "error")),
        *(("bookings_total", {"action": a}) for a in ("created", "cancelled")),
        *(
            ("email_jobs_total", {"job": j, "status": s})
            for j in ("identity.password_reset", "identity.invitation", "identity.temp_password_reset")
            for s in ("sent", "skipped", "error")
        ),
    ]
    missing = [(name, labels) for name, labels in expected if labels not in series.get(name, [])]
    assert not missing, missing
    assert series["http_requests_total"]  # the start-up probe was counted


async def test_an_unauthenticated_request_is_not_counted_as_a_server_error(app: Litestar):
    async with app_client(app) as client:
        before = _series((await client.get("/metrics")).text)
        assert (await client.get("/v1/bookings")).status_code == 401
        text = (await client.get("/metrics")).text
    line = 'http_5xx_total{method="GET",path="/v1/bookings"}'
    assert f"{line} 0.0" in text, [x for x in text.splitlines() if x.startswith(line)]
    assert 'http_requests_total{method="GET",path="/v1/bookings",status_code="401"}' in text
    assert before["http_5xx_total"]


async def test_metrics_are_refused_in_prod_without_a_token(settings):
    prod = msgspec.structs.replace(
        settings, app_env="prod", metrics=msgspec.structs.replace(settings.metrics, token=None)
    )
    async with app_client(create_app(prod)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/metrics-token-required"
    assert "http_requests_total" not in response.text


async def test_metrics_documented_label_values_match_the_code():
    # The email kinds the identity context sends, and the booking actions the scheduling context
    # counts, are the ones exported from start.
    from spotless.domain.scheduling import states

    assert set(metrics.BOOKING_ACTIONS) - {"created"} <= set(states.STATUSES)


async def test_an_api_process_freezes_its_start_up_heap_and_reports_the_collector_pauses(app: Litestar):
    """What start-up built is out of every full collection (gc.freeze: the 272 ms stalls of a list's
    p99 were full collections walking it), and the pauses left are on /metrics per generation."""
    import gc

    async with app_client(app) as client:
        assert gc.get_freeze_count() > 50_000  # the modules, mappers and routes of a started process
        gc.collect(1)
        gc.collect(2)
        text = (await client.get("/metrics")).text
    counts = {
        s.labels["generation"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "gc_pause_seconds_count"
    }
    assert counts.get("1", 0) >= 1 and counts.get("2", 0) >= 1, counts
