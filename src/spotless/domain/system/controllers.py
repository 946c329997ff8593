"""Operational endpoints at the root: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from spotless.domain.system.readiness import ReadinessCache, check_once
from spotless.domain.system.schemas import Health, Readiness, ServerStatus
from spotless.lib.errors import Problem
from spotless.settings import Settings


def _readiness(state: State) -> ReadinessCache:
    """The process's readiness cache (one per app: built on first use)."""
    cache: ReadinessCache | None = getattr(state, "readiness", None)
    if cache is None:
        settings: Settings = state.settings
        engine, redis, expected = state.engine, state.redis, state.expected_revision
        cache = ReadinessCache(lambda: check_once(settings, engine, redis, expected))
        state.readiness = cache
    return cache


class HealthController(Controller):
    tags = ["system"]
    include_in_schema = True

    @get("/healthz", operation_id="healthz", summary="Liveness (no I/O)", opt={"public": True, "rate_limit": "exempt"})
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Readiness: database, migrations, Redis, heartbeat (each check's name and status; "
        "answered from a result at most 1 s old)",
        opt={"public": True, "rate_limit": "exempt"},
        responses={503: ResponseSpec(data_container=Readiness, description="Not ready: a gating check failed")},
    )
    async def readyz(self, state: State) -> Response[Readiness]:
        answer = await _readiness(state).get()
        return Response(answer, status_code=200 if answer.ready else 503)


class StatusController(Controller):
    """Public server status for the apps: they correct device clock skew against `server_time`."""

    path = "/v1/status"
    tags = ["system"]

    @get(operation_id="getStatus", summary="Server status and database time", opt={"public": True})
    async def status(self, state: State) -> ServerStatus:
        async with state.engine.connect() as conn:
            now = await conn.scalar(text("SELECT now()"))
        return ServerStatus(status="ok", server_time=now, api_version=state.api_version)


class MetricsController(Controller):
    """Prometheus text for every process sharing PROMETHEUS_MULTIPROC_DIR; bearer METRICS_TOKEN (always
    required in prod)."""

    path = "/metrics"
    include_in_schema = False

    @get(opt={"public": True, "rate_limit": "exempt"})
    async def metrics(self, request: Request[Any, Any, Any], settings: Settings) -> Response[bytes]:
        token = settings.metrics.token
        if not token and settings.is_prod:
            # Settings refuse to start in prod without METRICS_TOKEN; this holds even if they did.
            raise Problem(
                403,
                "metrics-token-required",
                "Metrics need a token in production",
                "Set METRICS_TOKEN and scrape with `Authorization: Bearer <token>`.",
            )
        if token:
            supplied = request.headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                raise Problem(
                    401,
                    "unauthenticated",
                    "Authentication required",
                    "A valid metrics token is required.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(await asyncio.to_thread(render_metrics), media_type=CONTENT_TYPE_LATEST)


def render_metrics() -> bytes:
    """The exposition text. Merging every process's files is blocking file I/O and CPU: callers run
    it in a thread, never on the event loop."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
