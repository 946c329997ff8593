"""`just bench [AREA ...]` against a fresh, migrated benchmark database (BENCH_DB).

Default: `hot` — every hot operation driven by k6 (out of process, on its own core) beside bare
Litestar and its floor, at 10,000 bookings, then `jobs` (our Dramatiq middleware vs bare Dramatiq),
then `messaging` (messages/s through one worker process; booking commit -> email at an SMTP server).
`volume` (or BENCH_VOLUME=1m) also seeds to 1,000,000 bookings and measures the data operations
again. The other areas (identity, ratelimit, redis-outage, scheduling) compare within themselves
through an in-process Python client: their ratios and behaviour hold, their throughput is the
client's; name them to run them. Knobs: BENCH_DURATION (s, default 10), BENCH_VUS (32),
BENCH_WARMUP (2), BENCH_SCALE (the Python-client areas' request counts)."""

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

from scripts.bench.common import HEADER, BenchContext, Result
from spotless.db.migrations import upgrade
from spotless.settings import load_settings

HERE = Path(__file__).parent
SKIP = {
    "common",
    "__main__",
    "bare_app",
    "dramatiq_throughput",
    "floor_app",
    "loadgen",
    "hot",
    "jobs",
    "messaging",
    "soak",
}
# Areas measured out of process but not run by default (`just bench soak`: ten minutes).
EXTRA = ["soak"]
DEFAULT = ["hot", "jobs", "messaging"]
# BENCH_DB: a database of one's own when several people benchmark on one cluster.
BENCH_DB = os.environ.get("BENCH_DB", "spotless_bench")


def client_areas() -> list[str]:
    """The areas measured through the in-process Python client (one API node shared)."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules([str(HERE)]) if m.name not in SKIP)


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "areas", nargs="*", help=f"default: hot jobs messaging; also: volume, soak, {', '.join(client_areas())}"
    )
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")))
    parser.add_argument("--keep-db", action="store_true", help="reuse the benchmark database (large seeds)")
    args = parser.parse_args(argv)
    selected = list(args.areas or DEFAULT)
    volume = os.environ.get("BENCH_VOLUME", "").lower() in {"1m", "1000000", "volume"}
    if "volume" in selected:
        volume = True
        selected = ["hot" if a == "volume" else a for a in selected]
        if selected == ["hot"]:
            selected += ["jobs", "messaging"]
    unknown = [a for a in selected if a not in {*DEFAULT, *EXTRA, *client_areas()}]
    if unknown:
        parser.error(f"unknown area(s): {', '.join(unknown)}")
    env = bench_env()
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ.update({k: v for k, v in env.items() if k == "PROMETHEUS_MULTIPROC_DIR"})
    await fresh_database(env, args.keep_db)
    how = f"just bench {' '.join(argv)}".strip() + (" (BENCH_VOLUME=1m)" if os.environ.get("BENCH_VOLUME") else "")
    print(f"# Spotless benchmarks — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores — `{how}`\n")
    if "hot" in selected:
        from scripts.bench import hot

        print(f"## {hot.TITLE}{' — 10,000 then 1,000,000 bookings' if volume else ' — 10,000 bookings'}\n")
        await hot.run(env, volume=volume)
    if "jobs" in selected:
        from scripts.bench import jobs

        async with httpx.AsyncClient() as unused:
            results = await jobs.run(BenchContext(base_url="", env=env, client=unused, scale=args.scale))
        _print_table(jobs.TITLE, results)
    if "messaging" in selected:
        from scripts.bench import messaging

        _print_table(messaging.TITLE, await messaging.run(env, scale=args.scale))
    if "soak" in selected:
        from scripts.bench import soak

        print(f"## {soak.TITLE}\n")
        await soak.run(env)
    legacy = [a for a in selected if a in client_areas()]
    if legacy:
        api = processes.start_api(env)
        try:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=api.base_url, limits=limits, timeout=30) as client:
                ctx = BenchContext(base_url=api.base_url, env=env, client=client, scale=args.scale)
                for name in legacy:
                    module = importlib.import_module(f"scripts.bench.{name.replace('-', '_')}")
                    _print_table(f"{module.TITLE} (in-process Python client)", await module.run(ctx))
        finally:
            api.stop()
    return 0


def _print_table(title: str, results: list[Result]) -> None:
    print(f"## {title}\n\n{HEADER}")
    for result in results:
        print(result.row())
    print(flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
