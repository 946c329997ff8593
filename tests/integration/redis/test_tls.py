"""Managed Redis speaks TLS and wants credentials: every Redis path of the app works against a
redis-server that accepts TLS only (`--port 0`), requires a client certificate signed by our CA,
and knows only an ACL user whose password has characters a URL must escape.

The paths: the rate limiter's own client (EVALSHA), the session check (GET, SET NX on a miss,
SET on sign-in), enqueue through the outbox and the Dramatiq broker, a real worker consuming the
job and writing with the job runtime's client, and the scheduler heartbeat written and read."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from spotless.app import create_app
from spotless.db.engine import create_engine, session_factory
from spotless.domain.system import heartbeat
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, enqueue
from spotless.lib.ratelimit import Limiter
from spotless.lib.ratelimit.policies import Policy
from spotless.lib.redis import create_redis
from tests.conftest import make_settings, test_env
from tests.integration.redis.conftest import TlsRedisServer
from tests.support import processes
from tests.support.client import app_client
from tests.support.identity import signup


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _keys(redis: Redis, pattern: str) -> list[str]:
    return [key.decode() async for key in redis.scan_iter(match=pattern)]


async def test_every_redis_path_works_over_tls_with_a_client_certificate_and_acl_user(tls_redis: TlsRedisServer):
    # A generous limiter deadline: TLS handshakes on a loaded CI machine can pass the 50 ms default,
    # and this test is about every path working over TLS, not about the deadline.
    settings = make_settings(**tls_redis.env(RATE_LIMIT_ENABLED="true", RATE_LIMIT_REDIS_TIMEOUT_MS="2000"))
    ns = settings.jobs.namespace
    inspect = create_redis(settings.redis)  # our own client, over TLS too
    app = create_app(settings)
    redis_checks = _sample("auth_session_checks_total", {"source": "redis"})
    try:
        async with app_client(app) as client:
            owner = await signup(client)  # the "auth" limiter class, then the session is primed
            for _ in range(3):
                response = await client.get("/v1/auth/me", headers=owner.headers)
                assert response.status_code == 200, response.text
                assert "ratelimit" in response.headers
            assert not app.state.rate_limiter.fallback_active  # the limiter decided in Redis
            assert _sample("auth_session_checks_total", {"source": "redis"}) >= redis_checks + 3
        assert await _keys(inspect, f"{ns}:rl:*")
        assert await _keys(inspect, f"{ns}:session:*")

        # Enqueue as the app does (outbox row, then the broker), and a real worker runs it.
        worker = processes.start_worker(test_env(**tls_redis.env()), threads=2)
        engine = create_engine(settings.database, application_name="test-tls")
        broker = build_broker(settings)
        try:
            marker = f"over-tls-{uuid4().hex[:8]}"
            sessionmaker = session_factory(engine)
            async with sessionmaker() as session, session.begin():
                enqueue(session, "system.record", marker)
            assert await OutboxRelay(sessionmaker, broker).relay() == 1
            deadline = time.monotonic() + 30
            records: list[bytes] = []
            while time.monotonic() < deadline and marker.encode() not in records:
                records = await inspect.lrange(f"{ns}:records", 0, -1)
                await asyncio.sleep(0.1)
            assert marker.encode() in records, worker.log()
        finally:
            broker.close()
            worker.stop()
            await engine.dispose()

        # The scheduler's heartbeat, written and read back over TLS (what /readyz reads first).
        await heartbeat.beat_redis(inspect, ns, "test-runner", 60)
        beat = await heartbeat.read_redis(inspect, ns)
        assert beat is not None and (datetime.now(UTC) - beat).total_seconds() < 10
    finally:
        await inspect.aclose()


@pytest.mark.parametrize("missing", ["REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE"])
async def test_the_tls_settings_are_what_lets_clients_in(tls_redis: TlsRedisServer, missing: str):
    """Without our CA the server is not trusted; without the client certificate the server
    refuses us: both clients (redis-py and the limiter's own) really use the settings."""
    env = tls_redis.env(RATE_LIMIT_ENABLED="true")
    env.pop(missing)
    if missing == "REDIS_TLS_CERT_FILE":
        env.pop("REDIS_TLS_KEY_FILE")
    settings = make_settings(**env)
    client = create_redis(settings.redis, socket_timeout=2)
    try:
        with pytest.raises(Exception) as refused:
            await client.ping()
        if missing == "REDIS_TLS_CA_FILE":
            assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    finally:
        await client.aclose()
    limiter = Limiter.from_settings(settings)
    try:
        await limiter.warm_up()
        decision = await limiter.hit("default", "x", Policy(name="default", limit=10, burst=10))
        assert decision.backend == "memory"
    finally:
        await limiter.aclose()

    # And with every setting in place, the limiter's own client decides in Redis.
    good = Limiter.from_settings(make_settings(**tls_redis.env(RATE_LIMIT_ENABLED="true")))
    good.breaker.reset()  # type: ignore[union-attr]  # opened by the refused attempt above
    try:
        await good.warm_up()
        decision = await good.hit("default", "x", Policy(name="default", limit=10, burst=10))
        assert decision.backend == "redis"
    finally:
        await good.aclose()
