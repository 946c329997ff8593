"""A hung or dead Redis costs the requests in flight one timeout, and nothing afterwards.

The API runs in-process against a redis-server of the test's own with the limiter on, so the hot
path is exactly production's: limiter EVALSHA, then the session check's GET (then the handler).
With Redis frozen (SIGSTOP) or killed, after the first second no request waits for Redis (the
median `/v1/auth/me` stays under half the smallest Redis timeout, set to 200 ms here so that the
margin is not the machine's load: the session check then comes from PostgreSQL, whose latency on a
busy CI machine is not Redis's), nothing answers 5xx, and once Redis is back both the limiter and
the session check use it again within 5 s."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from spotless.app import create_app
from spotless.db.engine import session_factory
from spotless.lib.jobs.outbox import enqueue
from tests.conftest import make_settings
from tests.integration.redis.conftest import RedisServer
from tests.support.client import app_client
from tests.support.identity import signup

HUGE = str(10**6)  # a quota nobody reaches: every request pays for a Redis decision
OUTAGE_SECONDS = 3.0
WARM_UP_SECONDS = 1.0  # the allowance the target gives the first requests of an outage
LIMITER_TIMEOUT_MS = 200  # the smallest Redis deadline on the path (the session check's is 300)
RECOVERY_SECONDS = 5.0


def _redis_session_checks() -> float:
    return REGISTRY.get_sample_value("auth_session_checks_total", {"source": "redis"}) or 0.0


async def _timed(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.get("/v1/auth/me", headers=headers)
    return (time.perf_counter() - started) * 1000, response.status_code


async def _normal(client: httpx.AsyncClient, headers: dict[str, str], n: int = 50) -> list[float]:
    for _ in range(10):
        await _timed(client, headers)
    samples = [await _timed(client, headers) for _ in range(n)]
    assert {status for _, status in samples} == {200}
    return [ms for ms, _ in samples]


@pytest.mark.parametrize("failure", ["frozen", "killed"])
async def test_redis_outage_costs_one_timeout_then_normal_latency_and_recovers(
    redis_server: RedisServer, failure: str
) -> None:
    app = create_app(
        make_settings(
            REDIS_URL=redis_server.url(),
            RATE_LIMIT_ENABLED="true",
            RATE_LIMIT_PER_MINUTE=HUGE,
            RATE_LIMIT_BURST=HUGE,
            RATE_LIMIT_REDIS_TIMEOUT_MS=str(LIMITER_TIMEOUT_MS),
            AUTH_SESSION_CHECK_TIMEOUT_MS="300",
        )
    )
    limiter = app.state.rate_limiter
    break_redis: Callable[[], None] = redis_server.pause if failure == "frozen" else redis_server.stop
    mend_redis: Callable[[], None] = redis_server.resume if failure == "frozen" else redis_server.start
    async with app_client(app) as client:
        owner = await signup(client)
        normal_samples = await _normal(client, owner.headers)

        break_redis()
        try:
            outage: list[tuple[float, float, int]] = []  # (seconds into the outage, ms, status)
            began = time.perf_counter()
            while (elapsed := time.perf_counter() - began) < OUTAGE_SECONDS:
                ms, status = await _timed(client, owner.headers)
                outage.append((elapsed, ms, status))
            assert limiter.fallback_active  # the limiter decided from memory meanwhile
        finally:
            mend_redis()

        statuses = {status for _, _, status in outage}
        assert statuses == {200}, f"answers during the outage: {statuses}"

        # Back: both the session check (a GET answered by Redis) and the limiter use Redis again.
        returned = time.perf_counter()
        recovered_after = None
        while time.perf_counter() - returned < RECOVERY_SECONDS + 1:
            before = _redis_session_checks()
            ms, status = await _timed(client, owner.headers)
            assert status == 200
            if _redis_session_checks() > before and not limiter.fallback_active:
                recovered_after = time.perf_counter() - returned
                break
        assert recovered_after is not None and recovered_after <= RECOVERY_SECONDS
        before_stats = redis_server.commands()
        for _ in range(5):
            assert (await _timed(client, owner.headers))[1] == 200
        after_stats = redis_server.commands()
        assert after_stats.get("evalsha", 0) - before_stats.get("evalsha", 0) == 5
        assert after_stats.get("get", 0) - before_stats.get("get", 0) >= 5

        normal = statistics.median(normal_samples + await _normal(client, owner.headers))
        settled = [ms for at, ms, _ in outage if at >= WARM_UP_SECONDS]
        assert len(settled) >= 20
        # A request that waited for Redis would take at least LIMITER_TIMEOUT_MS.
        assert statistics.median(settled) < LIMITER_TIMEOUT_MS / 2, (
            f"median {statistics.median(settled):.1f} ms during the outage vs {normal:.1f} ms normally"
        )


async def test_jobs_committed_while_redis_hangs_are_not_handed_over_on_the_requests_clock(
    redis_server: RedisServer, owner_engine
) -> None:
    """The relay hands a commit's jobs to the broker holding a pool connection and row locks;
    against a frozen Redis that was the broker's 5 s socket timeout per commit, enough for a
    burst of writes to empty the pool. With the breaker open the hand-over fails at once, the
    row stays in the outbox, and it is delivered once Redis is back."""
    app = create_app(make_settings(REDIS_URL=redis_server.url()))
    async with app_client(app) as client:
        owner = await signup(client)
        sessionmaker = session_factory(app.state.engine)
        relay = app.state.relay
        await relay.drain()
        redis_server.pause()
        try:
            for _ in range(3):  # the first request trips the breaker (one session-check timeout)
                assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 200
            async with sessionmaker() as session, session.begin():
                enqueue(session, "system.noop", "during-outage")
            started = time.perf_counter()
            await relay.drain()
            assert await relay.relay() == 0
            assert time.perf_counter() - started < 0.5
        finally:
            redis_server.resume()
        async with owner_engine.connect() as conn:
            pending = await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL"))
        assert pending == 1
        deadline = time.perf_counter() + RECOVERY_SECONDS
        delivered = 0
        while time.perf_counter() < deadline and not delivered:
            await client.get("/v1/auth/me", headers=owner.headers)  # lets the breaker probe
            async with owner_engine.begin() as conn:
                await conn.execute(text("UPDATE job_outbox SET available_at = now()"))  # skip the backoff
            delivered = await relay.relay()
            await asyncio.sleep(0.1)
        assert delivered == 1
