"""The limiter against a real Redis: exact, atomic, one round trip; falls back and comes back."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import REGISTRY

from spotless.lib.ratelimit import Limiter
from spotless.lib.ratelimit.fallback import MemoryGCRA
from spotless.lib.ratelimit.policies import Policy
from tests.conftest import make_settings
from tests.integration.ratelimit.conftest import RedisServer

POLICY = Policy(name="default", limit=1, burst=40)  # one a minute, 40 at once: nothing refills in a test


def limiter_for(url: str | None = None, **env: str) -> Limiter:
    overrides = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_REDIS_RETRY_SECONDS": "0.2", **env}
    if url:
        overrides["REDIS_URL"] = url
    return Limiter.from_settings(make_settings(**overrides))


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_two_limiters_racing_admit_exactly_the_burst(redis):
    # Two limiters = two connections, as two API processes would have.
    first, second = limiter_for(), limiter_for()
    try:
        # Connected first, as at app start: the race is about the decisions, not the connects.
        await first.warm_up()
        await second.warm_up()
        decisions = await asyncio.gather(
            *(limiter.hit("default", "ip:192.0.2.1", POLICY) for _ in range(150) for limiter in (first, second))
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert sum(d.allowed for d in decisions) == 40
    assert {d.backend for d in decisions} == {"redis"}
    # One shared counter: every remaining value from 39 down to 0 was handed out exactly once.
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(40))


async def test_one_round_trip_per_decision(redis_server: RedisServer):
    limiter = limiter_for(redis_server.url())
    try:
        await limiter.hit("default", "warm", POLICY)  # connect and load the script once
        before = redis_server.commands()
        for i in range(50):
            await limiter.hit("default", f"ip:192.0.2.{i % 5}", POLICY)
        after = redis_server.commands()
    finally:
        await limiter.aclose()
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta["info"] -= 1  # our own INFO
    # commandstats also counts what the script runs inside Redis (TIME, GET, SET); from the
    # client only EVALSHA arrived: no PING, HELLO, SELECT or SCRIPT around it.
    assert {name: count for name, count in delta.items() if count} == {"evalsha": 50, "time": 50, "get": 50, "set": 50}


async def test_keys_expire_once_the_quota_is_whole_again(redis):
    limiter = limiter_for()
    policy = Policy(name="default", limit=60, burst=10)  # one a second
    try:
        for _ in range(3):
            decision = await limiter.hit("default", "ip:192.0.2.7", policy)
    finally:
        await limiter.aclose()
    ttl_ms = await redis.pttl(limiter.redis_key("default", "ip:192.0.2.7"))
    assert 2_000 < ttl_ms <= 3_000
    assert 2 < decision.reset_after <= 3 and decision.remaining == 7


async def test_redis_and_memory_decide_alike(redis):
    limiter = limiter_for()
    memory = MemoryGCRA(300)
    policy = Policy(name="default", limit=2, burst=5)
    try:
        shared = [await limiter.hit("default", "same", policy) for _ in range(8)]
    finally:
        await limiter.aclose()
    local = [memory.hit("same", policy.interval_us, policy.burst) for _ in range(8)]
    assert [(d.allowed, d.remaining) for d in shared] == [(o[0], o[1]) for o in local]
    assert shared[-1].retry_after > 29  # 30 s per request at 2 a minute


async def test_redis_down_falls_back_in_memory_and_returns_by_itself(redis_server: RedisServer, caplog):
    caplog.set_level(logging.WARNING, logger="spotless.ratelimit")
    limiter = limiter_for(redis_server.url())
    policy = Policy(name="default", limit=1, burst=3)
    errors_before = _sample("ratelimit_backend_errors_total", {"reason": "connection"})
    try:
        assert (await limiter.hit("default", "a", policy)).backend == "redis"
        redis_server.stop()
        started = time.perf_counter()
        outage = [await limiter.hit("default", "b", policy) for _ in range(5)]
        elapsed = time.perf_counter() - started
        assert [d.allowed for d in outage] == [True, True, True, False, False]  # still limited, locally
        assert {d.backend for d in outage} == {"memory"}
        assert elapsed < 0.5
        assert limiter.fallback_active and _sample("ratelimit_fallback_active") == 1
        assert _sample("ratelimit_backend_errors_total", {"reason": "connection"}) > errors_before
        breaker = {"breaker": limiter.breaker.name}  # type: ignore[union-attr]
        probes_failed = _sample("redis_circuit_probes_total", {**breaker, "outcome": "failed"})
        for _ in range(30):  # more requests and failed probes: logged once
            await limiter.hit("default", "c", policy)
            await asyncio.sleep(0.02)
        # Only the first decision tried Redis; the circuit sent the others to memory at once, and
        # its probe (every 0.2 s here) kept testing Redis meanwhile.
        assert _sample("ratelimit_backend_errors_total", {"reason": "connection"}) == errors_before + 1
        assert _sample("redis_circuit_probes_total", {**breaker, "outcome": "failed"}) >= probes_failed + 2
        assert _sample("redis_circuit_state", breaker) == 1
        warnings = [r.getMessage() for r in caplog.records if r.name == "spotless.ratelimit"]
        assert warnings == ["rate limiter: Redis unavailable, limiting from node-local memory until it is back"]

        redis_server.start()  # same port, empty: the script must be loaded again
        backend = await _wait_for_backend(limiter, policy, "redis")
        assert backend == "redis" and not limiter.fallback_active
        assert _sample("ratelimit_fallback_active") == 0
        assert caplog.records[-1].getMessage() == "rate limiter: Redis is back, shared limits restored"
    finally:
        await limiter.aclose()


async def test_redis_hung_is_given_up_on_within_the_timeout(redis_server: RedisServer):
    limiter = limiter_for(redis_server.url(), RATE_LIMIT_REDIS_TIMEOUT_MS="50")
    policy = Policy(name="default", limit=1, burst=100)
    errors_before = _sample("ratelimit_backend_errors_total", {"reason": "timeout"})
    try:
        assert (await limiter.hit("default", "a", policy)).backend == "redis"
        redis_server.pause()
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            decision = await limiter.hit("default", "a", policy)
            latencies.append(time.perf_counter() - started)
            assert decision.allowed and decision.backend == "memory"
            await asyncio.sleep(0.02)
        # Only the first request waits for the deadline; the rest never touch Redis.
        assert 0.045 <= latencies[0] < 0.25
        assert max(latencies[1:]) < 0.01
        assert _sample("ratelimit_backend_errors_total", {"reason": "timeout"}) > errors_before

        redis_server.resume()
        assert await _wait_for_backend(limiter, policy, "redis") == "redis"
    finally:
        await limiter.aclose()


async def test_concurrent_requests_while_redis_hangs_all_finish_near_the_deadline(redis_server: RedisServer):
    limiter = limiter_for(redis_server.url(), RATE_LIMIT_REDIS_TIMEOUT_MS="50")
    policy = Policy(name="default", limit=1, burst=1000)
    try:
        await limiter.hit("default", "a", policy)
        redis_server.pause()
        started = time.perf_counter()
        decisions = await asyncio.gather(*(limiter.hit("default", "a", policy) for _ in range(200)))
        elapsed = time.perf_counter() - started
    finally:
        redis_server.resume()
        await limiter.aclose()
    assert all(d.allowed for d in decisions)
    assert elapsed < 0.3


async def _wait_for_backend(limiter: Limiter, policy: Policy, backend: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = (await limiter.hit("default", "probe-wait", policy)).backend
        if seen == backend:
            return seen
        await asyncio.sleep(0.05)
    return seen
