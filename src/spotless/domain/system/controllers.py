"""Operational endpoints at the root: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from spotless.domain.system import heartbeat
from spotless.lib.errors import Problem
from spotless.lib.metrics import HEARTBEAT_AGE
from spotless.settings import Settings

CHECK_TIMEOUT_SECONDS = 1.5


class Health(msgspec.Struct):
    status: str


class Check(msgspec.Struct, omit_defaults=True):
    """One readiness check; fields that do not apply to a check are left out."""

    name: str
    ok: bool
    ms: float
    detail: str
    gating: bool | None = None  # set for every check by _timed
    current_revision: str | None = None
    expected_revision: str | None = None
    age_seconds: float | None = None
    source: str | None = None


class ServerStatus(msgspec.Struct):
    status: str
    server_time: datetime
    api_version: str


class Readiness(msgspec.Struct):
    status: str
    checks: list[Check]


async def _timed(name: str, fn: Callable[[], Awaitable[Check]], gating: bool = True) -> Check:
    started = time.perf_counter()
    try:
        check = await asyncio.wait_for(fn(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        check = Check(name=name, ok=False, ms=0, detail=f"timed out after {CHECK_TIMEOUT_SECONDS}s")
    except Exception as exc:
        check = Check(name=name, ok=False, ms=0, detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    check.ms = round((time.perf_counter() - started) * 1000, 1)
    check.gating = gating
    return check


class HealthController(Controller):
    tags = ["system"]
    include_in_schema = True

    @get("/healthz", operation_id="healthz", summary="Liveness (no I/O)", opt={"public": True, "rate_limit": "exempt"})
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Readiness: database, migrations, Redis, heartbeat",
        opt={"public": True, "rate_limit": "exempt"},
        responses={503: ResponseSpec(data_container=Readiness, description="Not ready: a gating check failed")},
    )
    async def readyz(self, state: State) -> Response[Readiness]:
        settings: Settings = state.settings
        engine = state.engine
        redis = state.redis
        expected = state.expected_revision

        async def database() -> Check:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return Check(name="database", ok=True, ms=0, detail="reachable")

        async def migrations() -> Check:
            async with engine.connect() as conn:
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            ok = current == expected
            return Check(
                name="migrations",
                ok=ok,
                ms=0,
                detail="at head" if ok else "database revision differs from code",
                current_revision=current,
                expected_revision=expected,
            )

        async def redis_check() -> Check:
            await redis.ping()
            return Check(name="redis", ok=True, ms=0, detail="reachable")

        async def beat() -> Check:
            ttl = settings.jobs.heartbeat_ttl_seconds
            source = "redis"
            try:
                last = await asyncio.wait_for(heartbeat.read_redis(redis, settings.jobs.namespace), timeout=0.5)
            except Exception:
                last = None
                source = "postgres"
            if last is None:
                # Redis down or key expired: Postgres holds the durable copy.
                source = "postgres"
                async with engine.connect() as conn:
                    last = await conn.scalar(
                        text("SELECT last_beat_at FROM job_heartbeats WHERE name = :n"), {"n": heartbeat.HEARTBEAT_NAME}
                    )
            if last is None:
                return Check(name="heartbeat", ok=False, ms=0, detail="no heartbeat recorded yet", source=source)
            age = (datetime.now(UTC) - last).total_seconds()
            HEARTBEAT_AGE.labels(job=heartbeat.HEARTBEAT_NAME).set(age)
            ok = age <= ttl
            return Check(
                name="heartbeat",
                ok=ok,
                ms=0,
                age_seconds=round(age, 1),
                source=source,
                detail="fresh" if ok else f"older than JOB_HEARTBEAT_TTL_SECONDS={ttl}",
            )

        tasks: list[Awaitable[Check]] = [
            _timed("database", database),
            _timed("migrations", migrations),
            # Redis is reported but not gating: the API keeps serving without it.
            _timed("redis", redis_check, gating=False),
        ]
        if settings.jobs.heartbeat_required:
            tasks.append(_timed("heartbeat", beat))
        checks = list(await asyncio.gather(*tasks))
        ready = all(c.ok for c in checks if c.gating)
        return Response(
            Readiness(status="ready" if ready else "unavailable", checks=checks), status_code=200 if ready else 503
        )


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
    """Prometheus text for every process sharing PROMETHEUS_MULTIPROC_DIR; bearer METRICS_TOKEN if set."""

    path = "/metrics"
    include_in_schema = False

    @get(opt={"public": True, "rate_limit": "exempt"})
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        token = request.app.state.settings.metrics.token
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
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
