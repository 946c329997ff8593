"""Memory under a steady load: one API process and one worker process, resident size sampled.

The API serves the authenticated 50-row list under k6 for BENCH_SOAK_MINUTES (default 10) while
events are committed at a steady rate and the worker runs their subscribers. RSS is read from
/proc every 30 s; the report gives each process's size after warm-up (minute 2) and at the end,
and the growth between them. Growth well above noise (a few MB) means something accumulates per
request or per message."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from tests.support import processes

from scripts.bench.hot import LIMITER_ON, Knobs, prepare
from scripts.bench.loadgen import Placement, Server, run_k6, serve
from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.domain.system.events import Probed
from spotless.lib.events import emit
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.settings import load_settings

TITLE = "Memory under a steady load"
SAMPLE_EVERY_S = 30
EVENTS_PER_SECOND = 20


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """RSS of `pid` and all its descendants: a server's supervisor (granian's is not Python) and
    its worker processes."""
    return rss_mib(pid) + sum(tree_rss_mib(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


async def _emit_steadily(env: dict[str, str], stop: asyncio.Event) -> int:
    settings = load_settings(env)
    registry.import_jobs()
    engine = create_engine(settings.database, application_name="bench-soak")
    sessions = session_factory(engine)
    broker = build_broker(settings)
    relay = OutboxRelay(sessions, broker)  # type: ignore[arg-type]
    install_relay(relay)
    sent = 0
    try:
        while not stop.is_set():
            async with sessions() as session, session.begin():
                emit(session, Probed(marker=f"soak-{sent}"))
            sent += 1
            await asyncio.sleep(1 / EVENTS_PER_SECOND)
        await relay.drain()
    finally:
        install_relay(None)
        broker.close()
        await engine.dispose()
    return sent


async def run(env: dict[str, str]) -> None:
    minutes = float(os.environ.get("BENCH_SOAK_MINUTES", "10"))
    knobs = Knobs.from_env()
    placement = Placement.detect()
    servers: list[Server] = []
    worker = processes.start_worker(env, processes=1, threads=8)
    try:
        api = serve(
            "api", "spotless.app:create_app_from_env", {**env, **LIMITER_ON}, placement, factory=True, probe="/healthz"
        )
        servers.append(api)
        setup = await prepare(api, env)
        day = setup.list_day.isoformat()
        url = f"{api.base_url}/v1/bookings?date_from={day}&date_to={day}&limit=50"
        worker_pid = next(iter(_children(worker.popen.pid)), worker.popen.pid)  # dramatiq forks its worker
        samples: list[tuple[float, float, float]] = []
        stop = asyncio.Event()
        emitter = asyncio.create_task(_emit_steadily(env, stop))
        load = asyncio.create_task(
            asyncio.to_thread(
                run_k6,
                "soak",
                placement,
                url=url,
                headers=setup.headers,
                vus=knobs.vus // 2 or 1,
                duration_s=int(minutes * 60),
                warmup_s=1,
            )
        )
        started = time.monotonic()
        while not load.done():
            samples.append(((time.monotonic() - started) / 60, tree_rss_mib(api.popen.pid), rss_mib(worker_pid)))
            await asyncio.wait({load}, timeout=SAMPLE_EVERY_S)
        samples.append(((time.monotonic() - started) / 60, tree_rss_mib(api.popen.pid), rss_mib(worker_pid)))
        stop.set()
        sent = await emitter
        measured: Any = load.result()
    finally:
        for server in servers:
            server.stop()
        worker.stop()
    warm = min(samples, key=lambda s: abs(s[0] - min(2.0, minutes / 5)))
    end = samples[-1]
    print(
        f"Load: k6 {knobs.vus // 2 or 1} VUs on the 50-row list for {minutes:g} min "
        f"({measured.rps:,.0f} req/s, p99 {measured.p99_ms:.1f} ms, failed {measured.failed_rate:.1%}); "
        f"{sent:,} events committed ({EVENTS_PER_SECOND}/s) for the worker.\n"
    )
    print(f"| process | RSS after warm-up (min {warm[0]:.1f}) MiB | RSS at min {end[0]:.1f} MiB | growth MiB |")
    print("|---|---:|---:|---:|")
    print(f"| API (one server worker, with its supervisor) | {warm[1]:.1f} | {end[1]:.1f} | {end[1] - warm[1]:+.1f} |")
    print(f"| worker (one Dramatiq process) | {warm[2]:.1f} | {end[2]:.1f} | {end[2] - warm[2]:+.1f} |")
    print(
        "\nSamples (minute, API MiB, worker MiB): "
        + ", ".join(f"{m:.1f}/{a:.0f}/{w:.0f}" for m, a, w in samples)
        + "\n"
    )
