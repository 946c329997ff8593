"""Redis outage: `/v1/auth/me` on a real API node (uvicorn on loopback, limiter on) whose Redis is
a redis-server of this benchmark's own, measured normally, with that Redis frozen (SIGSTOP) and
with it killed, plus how long after Redis returns the limiter and the session check use it again.

Load comes from wrk (out of process) when it is installed (`apt-get install -y wrk`), else from a
sequential Python client. The outage rows start one second into the outage (the target allows the
first second: the requests in flight when Redis stops each wait one timeout); the first second
is reported on its own row. Recovery is the time from Redis answering again to the first request
after which Redis has received both the limiter's EVALSHA and the session check's GET.

`just bench redis_outage`, or standalone: `python -m scripts.bench.redis_outage`."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from tests.support import processes
from tests.support.identity import signup

from scripts.bench.common import HEADER, BenchContext, Result, measure
from scripts.bench.ratelimit import _commandstats, _redis_server

TITLE = "Redis outage — GET /v1/auth/me with Redis normal, frozen (SIGSTOP) and killed (limiter on)"
HUGE = str(10**6)
SECONDS = float(os.environ.get("BENCH_OUTAGE_SECONDS", "5"))
CONCURRENCY = (1, 8)


@dataclass
class WrkResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    note: str = ""

    def row(self) -> str:
        rps = self.requests / self.seconds if self.seconds else 0.0
        return f"| {self.name} | {rps:,.0f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.errors} | {self.note} |"


Row = WrkResult | Result

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def _wrk(name: str, url: str, token: str, connections: int, seconds: float) -> WrkResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(name, requests, seconds, p50, p99, errors, note=f"wrk, {connections} connection(s)")


async def _sequential(client: httpx.AsyncClient, headers: dict[str, str], seconds: float) -> list[float]:
    latencies: list[float] = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        started = time.perf_counter()
        response = await client.get("/v1/auth/me", headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            latencies[-1] = -latencies[-1]  # marked: counted as an error below
    return latencies


def _as_result(name: str, latencies: list[float], seconds: float, note: str = "") -> Result:
    errors = sum(1 for ms in latencies if ms < 0)
    return Result(name, len(latencies), seconds, [abs(ms) for ms in latencies], errors, note)


async def _load(
    label: str, client: httpx.AsyncClient, url: str, token: str, headers: dict[str, str], rows: list[Row]
) -> None:
    if shutil.which("wrk"):
        for connections in CONCURRENCY:
            rows.append(await asyncio.to_thread(_wrk, f"{label}, {connections} conn", url, token, connections, SECONDS))
    else:
        latencies = await _sequential(client, headers, SECONDS)
        rows.append(_as_result(f"{label}, sequential", latencies, SECONDS, "Python client, one at a time"))


async def _recovery(client: httpx.AsyncClient, headers: dict[str, str], port: int) -> tuple[float, int, int]:
    """Seconds from Redis answering to the first request after which Redis saw both an EVALSHA
    (limiter) and a GET (session check) sent since; plus requests and errors meanwhile."""
    await asyncio.sleep(0.05)  # commands a frozen server had buffered run first; not counted
    before = await asyncio.to_thread(_commandstats, port)
    began = time.perf_counter()
    requests = errors = 0
    while time.perf_counter() - began < 30:
        response = await client.get("/v1/auth/me", headers=headers)
        requests += 1
        errors += response.status_code != 200
        now = await asyncio.to_thread(_commandstats, port)
        if now.get("evalsha", 0) > before.get("evalsha", 0) and now.get("get", 0) > before.get("get", 0):
            return time.perf_counter() - began + 0.05, requests, errors
    return float("inf"), requests, errors


async def run(ctx: BenchContext) -> list[Row]:
    redis_proc, port = _redis_server()
    env = {
        **ctx.env,
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_PER_MINUTE": HUGE,
        "RATE_LIMIT_BURST": HUGE,
        "AUTH_RATE_LIMIT_PER_MINUTE": HUGE,
    }
    api = processes.start_api(env)
    rows: list[Row] = []
    try:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
            owner = await signup(client)
            token, headers, url = owner.access_token, owner.headers, f"{api.base_url}/v1/auth/me"
            await measure("warm-up", lambda i: client.get("/v1/auth/me", headers=headers), 200, concurrency=1)
            await _load("normal", client, url, token, headers, rows)

            for outage in ("frozen (SIGSTOP)", "killed"):
                if outage.startswith("frozen"):
                    os.kill(redis_proc.pid, signal.SIGSTOP)
                else:
                    redis_proc.terminate()
                    redis_proc.wait(10)
                first = await _sequential(client, headers, 1.0)
                rows.append(
                    _as_result(
                        f"Redis {outage}: first second, sequential",
                        first,
                        1.0,
                        f"first request {abs(first[0]):.0f} ms (one timeout), then the breaker is open",
                    )
                )
                await _load(f"Redis {outage}, after 1 s", client, url, token, headers, rows)
                if outage.startswith("frozen"):
                    os.kill(redis_proc.pid, signal.SIGCONT)
                else:
                    redis_proc = _restart(port)
                seconds, requests, errors = await _recovery(client, headers, port)
                rows.append(
                    WrkResult(
                        f"Redis {outage} → back: limiter and session check on Redis again",
                        requests,
                        seconds,
                        0.0,
                        0.0,
                        errors,
                        note=f"recovered {seconds:.2f} s after Redis answered ({requests} requests meanwhile)",
                    )
                )
                await asyncio.sleep(1.0)
    finally:
        api.stop()
        if redis_proc.poll() is None:
            os.kill(redis_proc.pid, signal.SIGCONT)
            redis_proc.terminate()
            redis_proc.wait(10)
    return rows


def _restart(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            _commandstats(port)
            return proc
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not restart")


async def _standalone() -> None:
    from scripts.bench.__main__ import bench_env, fresh_database
    from spotless.db.migrations import upgrade
    from spotless.settings import load_settings

    env = bench_env()
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = env["PROMETHEUS_MULTIPROC_DIR"]
    await fresh_database(env, keep=True)
    await asyncio.to_thread(upgrade, load_settings(env))  # a kept database may predate a migration
    async with httpx.AsyncClient() as client:
        ctx = BenchContext(base_url="", env=env, client=client)
        results = await run(ctx)
    print(f"## {TITLE}\n\n{HEADER}")
    for result in results:
        print(result.row())


if __name__ == "__main__":
    sys.exit(asyncio.run(_standalone()))
