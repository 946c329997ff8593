"""Jobs: Dramatiq no-op throughput through our broker and middleware next to a bare Dramatiq actor,
each drained by one worker process (8 threads) in a process of its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from scripts.bench.common import BenchContext, Result

TITLE = "Jobs — messages/s through our middleware vs bare Dramatiq"


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
    messages = ctx.n(5000)
    bare = await _throughput("bare", messages, ctx.env)
    ours = await _throughput("ours", messages, ctx.env)
    ours.note += f"; {100 * ours.rps / bare.rps:.0f} % of bare" if bare.rps else ""
    return [bare, ours]
