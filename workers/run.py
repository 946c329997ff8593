"""Run one job now, in this process: `python -m workers.run --job system.tick --once`.

The job runs exactly as the worker would run it (its own session, idempotent), without the broker."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys

from spotless.domain import registry
from spotless.lib.jobs.registry import JOBS
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.lib.logging import configure_logging
from spotless.settings import load_settings


async def _run(name: str, kwargs: dict[str, object]) -> None:
    settings = load_settings()
    runtime = build_runtime(settings, application_name="spotless-run")
    set_runtime(runtime)
    try:
        result = JOBS[name].fn(**kwargs)
        if inspect.isawaitable(result):
            await result
    finally:
        await runtime.close()
        set_runtime(None)


def main(argv: list[str] | None = None) -> int:
    registry.import_jobs()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", required=False, help="job name, e.g. system.tick")
    parser.add_argument("--once", action="store_true", help="run once and exit (the only mode)")
    parser.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    parser.add_argument("--list", action="store_true", help="list the jobs")
    args = parser.parse_args(argv)
    if args.list or not args.job:
        print("\n".join(sorted(JOBS)))
        return 0
    if args.job not in JOBS:
        print(f"unknown job {args.job!r}; known: {', '.join(sorted(JOBS))}", file=sys.stderr)
        return 2
    configure_logging("INFO")
    asyncio.run(_run(args.job, json.loads(args.kwargs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
