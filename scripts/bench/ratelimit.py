"""Rate limiting: the same endpoint on two API nodes, one with the limiter and one without, measured
in one run (interleaved rounds, so machine noise hits both alike), plus the limiter call alone and
the Redis commands it sends per request.

The limiter's counters live in a redis-server of this benchmark's own (RATE_LIMIT_REDIS_URL), so
INFO commandstats counts nothing but the limiter. Standalone: `python -m scripts.bench.ratelimit`."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

import httpx
from tests.support import processes

from scripts.bench.common import HEADER, BenchContext, Result, measure
from spotless.lib.ratelimit import Limiter
from spotless.lib.ratelimit.policies import Policy
from spotless.settings import load_settings

TITLE = "Rate limiting — GET /v1/status with and without the limiter (one Redis EVALSHA per request)"
ROUNDS = 10
HUGE = str(10**6)  # quota nobody reaches: every request pays for a decision, none is refused


def _redis_server() -> tuple[subprocess.Popen[bytes], int]:
    port = processes.free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _commandstats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"INFO commandstats\r\n")
        data = b""
        while not data.endswith(b"\r\n\r\n") and b"cmdstat_info" not in data:
            data += sock.recv(65536)
    stats: dict[str, int] = {}
    for line in data.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            stats[name.removeprefix("cmdstat_")] = int(rest.split("calls=")[1].split(",")[0])
    return stats


async def run(ctx: BenchContext) -> list[Result]:
    n = ctx.n(2000)
    redis_proc, port = _redis_server()
    base = {
        **ctx.env,
        "RATE_LIMIT_PER_MINUTE": HUGE,
        "RATE_LIMIT_BURST": HUGE,
        "RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "FORWARDED_ALLOW_IPS": "",
    }
    off = processes.start_api({**base, "RATE_LIMIT_ENABLED": "false"})
    on = processes.start_api({**base, "RATE_LIMIT_ENABLED": "true"})
    try:
        results = await _http(n, off, on, port)
        results.append(await _limiter_alone(n, port))
        results.append(await _limiter_alone_tls(n))
    finally:
        on.stop()
        off.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
    return results


async def _http(n: int, off: processes.ManagedProcess, on: processes.ManagedProcess, port: int) -> list[Result]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(base_url=off.base_url, limits=limits, timeout=30) as off_client,
        httpx.AsyncClient(base_url=on.base_url, limits=limits, timeout=30) as on_client,
    ):
        check = await on_client.get("/v1/status")
        assert check.status_code == 200 and "ratelimit" in check.headers, check.headers
        results: list[Result] = []
        for concurrency in (1, 16):
            per_round = max(10, n // ROUNDS)
            merged: dict[str, Result] = {}
            before = _commandstats(port)
            on_requests = 0
            for _ in range(ROUNDS):
                for name, client in (("off", off_client), ("on", on_client)):
                    result = await measure(
                        name, lambda i, c=client: c.get("/v1/status"), per_round, concurrency=concurrency, warmup=10
                    )
                    on_requests += (per_round + min(10, per_round)) if name == "on" else 0
                    if name in merged:
                        merged[name].latencies_ms.extend(result.latencies_ms)
                        merged[name].requests += result.requests
                        merged[name].seconds += result.seconds
                        merged[name].errors += result.errors
                    else:
                        merged[name] = result
            after = _commandstats(port)
            sent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            sent["info"] = sent.get("info", 0) - 1
            evalsha = sent.get("evalsha", 0)
            other = sum(v for k, v in sent.items() if k not in ("evalsha", "time", "get", "set"))
            added = statistics.median(merged["on"].latencies_ms) - statistics.median(merged["off"].latencies_ms)
            merged["off"].name = f"GET /v1/status, limiter off, {concurrency} concurrent"
            merged["on"].name = f"GET /v1/status, limiter on, {concurrency} concurrent"
            merged["on"].note = (
                f"median added {added:+.2f} ms; EVALSHA per request {evalsha / on_requests:.2f}, "
                f"other client commands {other}"
            )
            results.extend([merged["off"], merged["on"]])
        return results


async def _limiter_alone(n: int, port: int) -> Result:
    """Limiter.hit in this process against the same Redis: the decision's own cost, without HTTP."""
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://bench@127.0.0.1/unused",
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "RATE_LIMIT_ENABLED": "true",
            "JOB_NAMESPACE": "bench-direct",
        }
    )
    limiter = Limiter.from_settings(settings)
    policy = Policy(name="default", limit=10**9, burst=10**9)
    await limiter.warm_up()
    latencies: list[float] = []
    started = time.perf_counter()
    try:
        for i in range(n * 2):
            t = time.perf_counter()
            decision = await limiter.hit("default", f"ip:192.0.2.{i % 250}", policy)
            latencies.append((time.perf_counter() - t) * 1000)
            assert decision.backend == "redis"
    finally:
        await limiter.aclose()
    return Result(
        "Limiter.hit alone (in-process, sequential)",
        n * 2,
        time.perf_counter() - started,
        latencies,
        note="one EVALSHA round trip on loopback",
    )


async def _limiter_alone_tls(n: int) -> Result:
    """The same, against a TLS-only redis-server requiring a client certificate (managed Redis):
    the hand-written client over the event loop's TLS, so TLS costs what it costs, no more."""
    import tempfile
    from pathlib import Path

    from tests.integration.redis.conftest import TlsRedisServer, make_tls_files

    with tempfile.TemporaryDirectory() as directory:
        server = TlsRedisServer(make_tls_files(Path(directory)))
        server.start()
        try:
            settings = load_settings(
                {
                    "DATABASE_URL": "postgresql://bench@127.0.0.1/unused",
                    **server.env(),
                    "RATE_LIMIT_ENABLED": "true",
                    "JOB_NAMESPACE": "bench-direct",
                }
            )
            limiter = Limiter.from_settings(settings)
            policy = Policy(name="default", limit=10**9, burst=10**9)
            await limiter.warm_up()
            latencies: list[float] = []
            started = time.perf_counter()
            try:
                for i in range(n * 2):
                    t = time.perf_counter()
                    decision = await limiter.hit("default", f"ip:192.0.2.{i % 250}", policy)
                    latencies.append((time.perf_counter() - t) * 1000)
                    assert decision.backend == "redis"
            finally:
                await limiter.aclose()
        finally:
            server.stop()
    return Result(
        "Limiter.hit alone over TLS (rediss://, client certificate)",
        n * 2,
        time.perf_counter() - started,
        latencies,
        note="same client, TLS by the event loop",
    )


async def _standalone() -> None:
    from scripts.bench.__main__ import bench_env, fresh_database

    env = bench_env()
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = env["PROMETHEUS_MULTIPROC_DIR"]
    await fresh_database(env, keep=True)
    async with httpx.AsyncClient() as client:
        ctx = BenchContext(base_url="", env=env, client=client, scale=float(os.environ.get("BENCH_SCALE", "1")))
        results = await run(ctx)
    print(f"## {TITLE}\n\n{HEADER}")
    for result in results:
        print(result.row())


if __name__ == "__main__":
    sys.exit(asyncio.run(_standalone()))
