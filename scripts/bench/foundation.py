"""Foundation: operational endpoints and a DB-backed endpoint next to a bare Litestar endpoint, and
Dramatiq no-op throughput through our middleware next to a bare actor."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx
from tests.support import processes

from scripts.bench.common import BenchContext, Result, measure

TITLE = "Foundation — HTTP (16 concurrent keep-alive clients) and jobs"


async def _bare_node(env: dict[str, str]) -> processes.ManagedProcess:
    return await asyncio.to_thread(
        processes.start_asgi, "scripts.bench.bare_app:app", env, factory=False, probe="/json"
    )


async def _throughput(kind: str, total: int, env: dict[str, str]) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.bench.dramatiq_throughput",
        kind,
        str(total),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    data = json.loads(out.decode().strip().splitlines()[-1])
    per_message_ms = data["seconds"] * 1000 / total
    return Result(
        f"dramatiq no-op, {'our broker + middleware (async actor)' if kind == 'ours' else 'bare Dramatiq (sync actor)'}",
        total,
        data["seconds"],
        [per_message_ms],
        note="worker: 1 process, 8 threads; ms = mean per message",
    )


async def run(ctx: BenchContext) -> list[Result]:
    n = ctx.n(3000)
    results = []
    bare = await _bare_node(ctx.env)
    try:
        async with httpx.AsyncClient(base_url=bare.base_url, limits=httpx.Limits(max_connections=64)) as bare_client:
            results.append(await measure("bare Litestar GET /json (baseline)", lambda i: bare_client.get("/json"), n))
    finally:
        bare.stop()
    results.append(await measure("GET /healthz", lambda i: ctx.client.get("/healthz"), n))
    results.append(await measure("GET /readyz (database, migrations, redis)", lambda i: ctx.client.get("/readyz"), n))
    results.append(await measure("GET /v1/status (one DB query)", lambda i: ctx.client.get("/v1/status"), n))
    messages = ctx.n(5000)
    results.append(await _throughput("bare", messages, ctx.env))
    results.append(await _throughput("ours", messages, ctx.env))
    return results
