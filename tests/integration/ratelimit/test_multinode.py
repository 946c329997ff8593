"""Real API processes (uvicorn) sharing one Redis: exact quotas across nodes, spoofing, and Redis
stopped or frozen under them."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import test_env as child_env
from tests.integration.ratelimit.conftest import RedisServer
from tests.support.processes import ManagedProcess, start_api

pytestmark = pytest.mark.slow


def _nodes(count: int, **env: str) -> list[ManagedProcess]:
    # uvicorn rewrites the client address from X-Forwarded-For itself when the peer is 127.0.0.1
    # (its FORWARDED_ALLOW_IPS default), before Spotless sees the request: switched off, so that
    # TRUST_PROXY_HEADERS and TRUSTED_PROXY_* decide alone, as in deployment (--no-proxy-headers).
    settings = child_env(RATE_LIMIT_ENABLED="true", FORWARDED_ALLOW_IPS="", **env)
    nodes: list[ManagedProcess] = []
    try:
        for _ in range(count):
            nodes.append(start_api(settings))
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return nodes


@pytest.fixture
def stop_all() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for node in started:
        node.stop()


async def _get(client: httpx.AsyncClient, node: ManagedProcess, client_ip: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    return await client.get(f"{node.base_url}/v1/status", headers=headers)


async def test_two_nodes_admit_exactly_the_quota_between_them(stop_all):
    quota, extra = 30, 20
    nodes = _nodes(2, RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST=str(quota))
    stop_all.extend(nodes)
    async with httpx.AsyncClient(timeout=10) as client:
        responses = [await _get(client, nodes[i % 2]) for i in range(quota + extra)]
    codes = [r.status_code for r in responses]
    assert codes == [200] * quota + [429] * extra
    # Both nodes admitted and refused: one counter, not two.
    assert {r.url.port for r in responses[:quota]} == {nodes[0].port, nodes[1].port}
    assert {r.url.port for r in responses[quota:]} == {nodes[0].port, nodes[1].port}
    assert [r.headers["ratelimit"] for r in responses[:3]] == [
        f'"default";r={quota - 1 - i};t={60 * (i + 1)}' for i in range(3)
    ]
    refused = responses[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1


async def test_two_nodes_stay_exact_under_concurrency(stop_all):
    quota = 60
    nodes = _nodes(2, RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST=str(quota))
    stop_all.extend(nodes)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        responses = await asyncio.gather(*(_get(client, nodes[i % 2]) for i in range(300)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == quota and codes.count(429) == 300 - quota
    remaining = sorted(
        int(r.headers["ratelimit"].split("r=")[1].split(";")[0]) for r in responses if r.status_code == 200
    )
    assert remaining == list(range(quota))


async def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(stop_all, redis):
    # We (127.0.0.1) are not the trusted proxy: whatever we write in X-Forwarded-For is ignored.
    nodes = _nodes(
        1, RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="5", TRUST_PROXY_HEADERS="true", TRUSTED_PROXY_IPS="10.9.9.9"
    )
    stop_all.extend(nodes)
    async with httpx.AsyncClient(timeout=10) as client:
        codes = [(await _get(client, nodes[0], f"198.51.100.{i}")).status_code for i in range(8)]
    assert codes == [200] * 5 + [429] * 3
    keys = [key.decode() for key in await redis.keys("*:rl:*")]
    assert len(keys) == 1 and keys[0].endswith(":rl:default:ip:127.0.0.1")


async def _measure(client: httpx.AsyncClient, nodes: list[ManagedProcess], ip: str, count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = await _get(client, nodes[i % len(nodes)], ip)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.01)
    return latencies


async def _shared_again(client: httpx.AsyncClient, nodes: list[ManagedProcess], quota: int) -> bool:
    """True once both nodes decide from Redis again: a fresh caller gets exactly `quota` in all."""
    deadline = time.monotonic() + 10
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        ip = f"203.0.113.{attempt}"
        codes = [(await _get(client, nodes[i % 2], ip)).status_code for i in range(quota + 4)]
        if codes == [200] * quota + [429] * 4:
            return True
        await asyncio.sleep(0.3)
    return False


async def _metrics(client: httpx.AsyncClient, node: ManagedProcess) -> dict[str, float]:
    text = (await client.get(f"{node.base_url}/metrics")).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _outage_nodes(server: RedisServer) -> list[ManagedProcess]:
    # The node's whole Redis (broker, caches, limiter) is the test's own server. We play the
    # trusted proxy so each phase can use a caller of its own.
    return _nodes(
        2,
        REDIS_URL=server.url(),
        RATE_LIMIT_PER_MINUTE="1",
        RATE_LIMIT_BURST="6",
        RATE_LIMIT_REDIS_TIMEOUT_MS="50",
        RATE_LIMIT_REDIS_RETRY_SECONDS="0.5",
        TRUST_PROXY_HEADERS="true",
        TRUSTED_PROXY_IPS="127.0.0.1",
    )


@pytest.mark.parametrize("fault", ["stopped", "hung"])
async def test_redis_stopped_or_hung_requests_succeed_and_sharing_returns(stop_all, redis_server, fault):
    nodes = _outage_nodes(redis_server)
    stop_all.extend(nodes)
    async with httpx.AsyncClient(timeout=10) as client:
        assert await _shared_again(client, nodes, quota=6)
        baseline = [ms for i in range(4) for ms in await _measure(client, nodes, f"192.0.2.{i}", 6)]

        if fault == "stopped":
            redis_server.stop()
        else:
            redis_server.pause()
        outage = [ms for i in range(6) for ms in await _measure(client, nodes, f"192.0.2.{100 + i}", 6)]
        # Still limited during the outage, by each node's own memory.
        codes = [(await _get(client, nodes[0], "192.0.2.200")).status_code for _ in range(8)]
        assert codes == [200] * 6 + [429] * 2
        during = await _metrics(client, nodes[0])
        assert during["ratelimit_fallback_active"] == 1
        assert (
            during.get('ratelimit_backend_errors_total{reason="connection"}', 0)
            + during.get('ratelimit_backend_errors_total{reason="timeout"}', 0)
            >= 1
        )
        assert during['http_429_total{bucket="default"}'] >= 2

        if fault == "stopped":
            redis_server.start()  # empty: scripts are loaded again by the nodes
        else:
            redis_server.resume()
        assert await _shared_again(client, nodes, quota=6), "nodes did not return to the shared limiter"
        assert (await _metrics(client, nodes[0]))["ratelimit_fallback_active"] == 0

    # Bounded added latency: the first request on each node waits at most the 50 ms deadline;
    # every other one is decided in memory without touching Redis.
    assert max(outage) < 400, outage
    assert statistics.median(outage) < statistics.median(baseline) + 15, (baseline, outage)
    for node in nodes:
        log = node.log()
        assert "Redis unavailable" in log and "Redis is back" in log
