"""Jobs: Dramatiq no-op throughput through our broker and middleware next to a bare Dramatiq actor,
each drained by one worker process (8 threads) in a process of its own; commit -> actor start
through the outbox fast path; and one worker process' resident size under a steady load.

`rss_kib(pid)` samples any process' resident size from /proc (the HTTP bench uses it for the API)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from tests.support import processes

from scripts.bench.common import BenchContext, Result, env_int

TITLE = "Jobs — messages/s through our middleware vs bare Dramatiq; commit -> actor start; worker memory"


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS from /proc/<pid>/status); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (the dramatiq supervisor's worker processes)."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def _script(env: dict[str, str], *args: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.bench.dramatiq_throughput",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def _throughput(kind: str, total: int, env: dict[str, str]) -> Result:
    data = await _script(env, kind, str(total))
    seconds = float(data["seconds"])  # type: ignore[arg-type]
    names = {
        "ours": "our broker + middleware (async actor)",
        "bare": "bare Dramatiq (sync actor)",
        "bare-async": "bare Dramatiq + AsyncIO (async actor)",
    }
    return Result(
        f"dramatiq no-op, {names[kind]}",
        total,
        seconds,
        [seconds * 1000 / total],
        note="worker: 1 process, 8 threads; ms = mean per message",
    )


async def _latency(total: int, env: dict[str, str]) -> Result:
    started = time.perf_counter()
    data = await _script(env, "latency", str(total))
    latencies = [float(v) for v in data["latencies_ms"]]  # type: ignore[attr-defined]
    return Result(
        "commit -> actor start (outbox fast path, one job per commit)",
        len(latencies),
        time.perf_counter() - started,
        latencies,
        errors=int(data["lost"]),  # type: ignore[call-overload]
        note="sequential commits 0-300 ms apart, idle worker between them; target p50 <= 20, p99 <= 100",
    )


async def _memory(env: dict[str, str], worker_pid: int, seconds: int, rate: int) -> Result:
    """Steady no-op load for `seconds`; RSS after warm-up (10 %), at 20 % and at 100 % (with
    BENCH_JOBS_MEMORY_SECONDS=600: minute 1, 2 and 10)."""
    load = asyncio.create_task(_script(env, "steady", str(seconds), str(rate)))
    samples: dict[str, int] = {}
    start = time.monotonic()
    for label, at in (("warm", 0.1), ("early", 0.2), ("late", 0.97)):
        await asyncio.sleep(max(0.0, start + at * seconds - time.monotonic()))
        samples[label] = rss_kib(worker_pid)
    await load
    growth = samples["late"] - samples["early"]
    return Result(
        "worker process RSS under steady load",
        int(seconds * rate),
        float(seconds),
        [],
        note=(
            f"{rate} msg/s for {seconds} s; RSS KiB after warm-up {samples['warm']:,}, at 20 % {samples['early']:,},"
            f" at the end {samples['late']:,} (growth {growth:+,} KiB)"
        ),
    )


async def run(ctx: BenchContext) -> list[Result]:
    messages = ctx.n(5000)
    bare = await _throughput("bare", messages, ctx.env)
    bare_async = await _throughput("bare-async", messages, ctx.env)
    ours = await _throughput("ours", messages, ctx.env)
    if bare.rps and bare_async.rps:
        ours.note += (
            f"; {100 * ours.rps / bare.rps:.0f} % of bare, {100 * ours.rps / bare_async.rps:.0f} % of bare async"
        )
    results = [bare, bare_async, ours]
    worker = processes.start_worker(ctx.env, processes=1, threads=8)
    try:
        results.append(await _latency(ctx.n(300), ctx.env))
        children = child_pids(worker.popen.pid)
        if children:
            seconds = env_int("BENCH_JOBS_MEMORY_SECONDS", 60)
            results.append(await _memory(ctx.env, children[0], seconds, env_int("BENCH_JOBS_MEMORY_RATE", 200)))
    finally:
        worker.stop()
    return results
