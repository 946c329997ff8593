from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.system import heartbeat
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories import arrange, new_heartbeat

READINESS_CACHE_SECONDS = 1.05


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
    assert {c["status"] for c in checks.values()} == {"ok"}
    assert all(c["ok"] for c in checks.values())


async def _with_app(**env: str):
    return app_client(create_app(make_settings(**env)))


async def test_readyz_503_on_stale_heartbeat_and_200_on_fresh(owner_engine: AsyncEngine, redis):
    async with await _with_app(JOB_HEARTBEAT_REQUIRED="true", JOB_HEARTBEAT_TTL_SECONDS="60") as client:
        missing = await client.get("/readyz")
        assert missing.status_code == 503
        assert _checks(missing.json())["heartbeat"] == {
            "name": "heartbeat",
            "ok": False,
            "status": "missing",
            "gating": True,
        }

        async with arrange(owner_engine) as db:
            await new_heartbeat(db, last_beat_at=datetime.now(UTC) - timedelta(minutes=5), runner_id="old")
        await asyncio.sleep(READINESS_CACHE_SECONDS)
        stale = await client.get("/readyz")
        assert stale.status_code == 503
        beat = _checks(stale.json())["heartbeat"]
        assert beat["ok"] is False and beat["status"] == "stale"

        await heartbeat.beat_redis(redis, make_settings().jobs.namespace, "fresh-runner", 60)
        await asyncio.sleep(READINESS_CACHE_SECONDS)
        fresh = await client.get("/readyz")
        assert fresh.status_code == 200, fresh.text  # Postgres's beat is stale: this one came from Redis
        assert _checks(fresh.json())["heartbeat"]["status"] == "ok"


async def test_readyz_503_on_revision_mismatch(owner_engine: AsyncEngine):
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'deadbeef'"))
    try:
        async with await _with_app() as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        migrations = _checks(response.json())["migrations"]
        assert (migrations["ok"], migrations["status"]) == (False, "mismatch")
        assert "deadbeef" not in response.text  # revisions go to the log, not to anyone who asks
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
    async with arrange(owner_engine) as db:
        await new_heartbeat(db, runner_id="r1")
    env = {"REDIS_URL": f"redis://127.0.0.1:{closed_port}/0", "JOB_HEARTBEAT_REQUIRED": "true"}
    async with await _with_app(**env) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = _checks(response.json())
    assert checks["redis"]["ok"] is False and checks["redis"]["gating"] is False
    assert checks["heartbeat"]["ok"] is True  # Redis is down: the beat was read from Postgres


async def test_readyz_concurrent_checks_do_not_serialise(client):
    # Many probes at once (load balancers, k8s) must not pile up behind each other.
    responses = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}


async def test_concurrent_readyz_calls_share_one_check_round_on_one_connection(app):
    """50 probes at once cost one round of checks: one pooled connection, one SQL statement."""
    engine = app.state.engine.sync_engine
    statements: list[str] = []
    checkouts: list[object] = []

    def on_statement(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    def on_checkout(dbapi_conn, record, proxy) -> None:  # type: ignore[no-untyped-def]
        checkouts.append(record)

    async with app_client(app) as client:
        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine.pool, "checkout", on_checkout)
        try:
            responses = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
        finally:
            event.remove(engine, "before_cursor_execute", on_statement)
            event.remove(engine.pool, "checkout", on_checkout)
    assert {r.status_code for r in responses} == {200}
    assert len(checkouts) == 1
    assert len([s for s in statements if "alembic_version" in s]) == 1
    assert {r.text for r in responses} == {responses[0].text}


async def test_readyz_checks_again_after_the_cache_second(app):
    engine = app.state.engine.sync_engine
    statements: list[str] = []

    def on_statement(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    async with app_client(app) as client:
        event.listen(engine, "before_cursor_execute", on_statement)
        try:
            await client.get("/readyz")
            await client.get("/readyz")
            await asyncio.sleep(READINESS_CACHE_SECONDS)
            await client.get("/readyz")
        finally:
            event.remove(engine, "before_cursor_execute", on_statement)
    assert len([s for s in statements if "alembic_version" in s]) == 2


async def test_readyz_failure_answers_names_and_statuses_only(black_hole: int):
    """What went wrong (driver errors, addresses, revisions) is logged, never answered."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port}/secret_db_name",
        "REDIS_URL": f"redis://127.0.0.1:{black_hole}/0",
        "JOB_HEARTBEAT_REQUIRED": "true",
    }
    async with await _with_app(**env) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"status", "checks"}
    for check in body["checks"]:
        assert set(check) == {"name", "ok", "status", "gating"}
        assert check["status"] in {"ok", "unreachable", "timeout", "mismatch", "stale", "missing", "unknown"}
    for leak in ("Error", "refused", "secret_db_name", str(closed_port), str(black_hole), "Connect"):
        assert leak not in response.text


async def test_healthz_runs_on_the_event_loop_alone(client, monkeypatch):
    """No worker-thread hop per request (a plain-function guard would take one on every route)."""
    loop = asyncio.get_running_loop()
    hops: list[object] = []
    original = loop.run_in_executor

    def counting(executor, fn, *args):  # type: ignore[no-untyped-def]
        hops.append(fn)
        return original(executor, fn, *args)

    monkeypatch.setattr(loop, "run_in_executor", counting)
    for _ in range(3):
        assert (await client.get("/healthz", headers={"Authorization": "Bearer not-a-token"})).status_code == 200
    assert hops == []
