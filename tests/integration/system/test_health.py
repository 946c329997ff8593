from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.system import heartbeat
from tests.conftest import make_settings
from tests.support.client import app_client


def _checks(body: dict) -> dict[str, dict]:
    return {c["name"]: c for c in body["checks"]}


async def test_healthz_is_ok_without_io(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_ready_with_database_migrations_and_redis(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = _checks(response.json())
    assert set(checks) == {"database", "migrations", "redis"}
    assert checks["migrations"]["current_revision"] == checks["migrations"]["expected_revision"]
    assert all(c["ok"] for c in checks.values())


async def _with_app(**env: str):
    return app_client(create_app(make_settings(**env)))


async def test_readyz_503_on_stale_heartbeat_and_200_on_fresh(owner_engine: AsyncEngine, redis):
    async with await _with_app(JOB_HEARTBEAT_REQUIRED="true", JOB_HEARTBEAT_TTL_SECONDS="60") as client:
        missing = await client.get("/readyz")
        assert missing.status_code == 503
        assert _checks(missing.json())["heartbeat"]["ok"] is False

        async with owner_engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO job_heartbeats (name, last_beat_at, runner_id) VALUES ('jobs-runner', :at, 'old')"),
                {"at": datetime.now(UTC) - timedelta(minutes=5)},
            )
        stale = await client.get("/readyz")
        assert stale.status_code == 503
        beat = _checks(stale.json())["heartbeat"]
        assert beat["ok"] is False and beat["age_seconds"] >= 299

        await heartbeat.beat_redis(redis, make_settings().jobs.namespace, "fresh-runner", 60)
        fresh = await client.get("/readyz")
        assert fresh.status_code == 200, fresh.text
        assert _checks(fresh.json())["heartbeat"]["source"] == "redis"


async def test_readyz_503_on_revision_mismatch(owner_engine: AsyncEngine):
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'deadbeef'"))
    try:
        async with await _with_app() as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        migrations = _checks(response.json())["migrations"]
        assert migrations["ok"] is False
        assert migrations["current_revision"] == "deadbeef"
        assert migrations["expected_revision"] != "deadbeef"
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE alembic_version SET version_num = :v"),
                {"v": create_app(make_settings()).state.expected_revision},
            )


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield server.getsockname()[1]
    server.close()


async def test_readyz_answers_503_within_budget_when_database_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with await _with_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed_port}/nope") as client:
        started = time.perf_counter()
        response = await client.get("/readyz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert _checks(response.json())["database"]["ok"] is False
    assert elapsed < 2.0


async def test_readyz_answers_within_budget_when_database_and_redis_hang(black_hole: int):
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{black_hole}/hung",
        "REDIS_URL": f"redis://127.0.0.1:{black_hole}/0",
        "JOB_HEARTBEAT_REQUIRED": "true",
    }
    async with await _with_app(**env) as client:
        started = time.perf_counter()
        response = await client.get("/readyz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    checks = _checks(response.json())
    assert not checks["database"]["ok"] and not checks["redis"]["ok"] and not checks["heartbeat"]["ok"]
    assert elapsed < 2.0


async def test_redis_down_keeps_readiness_on_postgres_heartbeat(owner_engine: AsyncEngine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO job_heartbeats (name, last_beat_at, runner_id) VALUES ('jobs-runner', now(), 'r1')")
        )
    env = {"REDIS_URL": f"redis://127.0.0.1:{closed_port}/0", "JOB_HEARTBEAT_REQUIRED": "true"}
    async with await _with_app(**env) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = _checks(response.json())
    assert checks["redis"]["ok"] is False and checks["redis"]["gating"] is False
    assert checks["heartbeat"]["ok"] is True and checks["heartbeat"]["source"] == "postgres"


async def test_readyz_concurrent_checks_do_not_serialise(client):
    # Many probes at once (load balancers, k8s) must not pile up behind each other.
    responses = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
