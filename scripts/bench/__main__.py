"""`just bench [AREA ...]`: start a real API node on loopback against a fresh, migrated benchmark
database and run each area's benchmarks; prints one markdown table per area.

Areas are modules beside this file exposing `TITLE` and `async def run(ctx) -> list[Result]`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from tests.support import processes

from scripts.bench.common import HEADER, BenchContext
from spotless.db.migrations import upgrade
from spotless.settings import load_settings

HERE = Path(__file__).parent
SKIP = {"common", "__main__", "bare_app", "dramatiq_throughput"}
# BENCH_DB: a database of one's own when several people benchmark on one cluster.
BENCH_DB = os.environ.get("BENCH_DB", "spotless_bench")


def areas() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in SKIP]
    return ["foundation", *sorted(n for n in names if n != "foundation")]


def bench_env() -> dict[str, str]:
    base_db = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    parts = urlsplit(base_db)
    return {
        "APP_ENV": "test",
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{BENCH_DB}")),
        "REDIS_URL": os.environ["REDIS_URL"],
        "JOB_NAMESPACE": "spotless-bench",
        "LOG_LEVEL": "WARNING",
        "METRICS_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "false",
        "DATABASE_POOL_SIZE": "20",
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/spotless-bench-prom"),
    }


async def fresh_database(env: dict[str, str], keep: bool) -> None:
    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB)
        if exists and keep:
            return
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, load_settings(env))


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", help=f"areas to run (default all: {', '.join(areas())})")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")))
    parser.add_argument("--keep-db", action="store_true", help="reuse the benchmark database (large seeds)")
    args = parser.parse_args(argv)
    selected = args.areas or areas()
    env = bench_env()
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ.update({k: v for k, v in env.items() if k == "PROMETHEUS_MULTIPROC_DIR"})
    await fresh_database(env, args.keep_db)
    api = processes.start_api(env)
    print(f"# Spotless benchmarks — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, one API process\n")
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=api.base_url, limits=limits, timeout=30) as client:
            ctx = BenchContext(base_url=api.base_url, env=env, client=client, scale=args.scale)
            for name in selected:
                module = importlib.import_module(f"scripts.bench.{name.replace('-', '_')}")
                results = await module.run(ctx)
                print(f"## {module.TITLE}\n\n{HEADER}")
                for result in results:
                    print(result.row())
                print(flush=True)
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
