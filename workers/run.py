"""Run one job now, in this process: `python -m workers.run --job system.tick --once`.

NAME is a `domain.verb` or an operations guide's name (`jobs-runner`, `cleanup`, ...); a guide's
job whose domain is not built yet is refused by name (exit 3), anything else unknown exits 2.

The job runs exactly as the worker would run it (its own session, idempotent), without the broker."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys

from spotless.domain import registry
from spotless.lib.jobs.registry import ALIASES, JOBS, JobNotBuiltYet, UnknownJob, decoding, resolve_job
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.lib.logging import configure_logging
from spotless.settings import load_settings


async def _run(name: str, kwargs: dict[str, object]) -> None:
    settings = load_settings()
    runtime = build_runtime(settings, application_name="spotless-run")
    set_runtime(runtime)
    try:
        result = decoding(resolve_job(name).fn)(**kwargs)
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
        aliases: dict[str, list[str]] = {}
        for alias, target in ALIASES.items():
            aliases.setdefault(target, []).append(alias)
        print("\n".join(f"{n}  ({', '.join(sorted(aliases[n]))})" if n in aliases else n for n in sorted(JOBS)))
        return 0
    try:
        resolve_job(args.job)
    except JobNotBuiltYet as exc:
        print(exc, file=sys.stderr)
        return 3
    except UnknownJob as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("INFO")
    asyncio.run(_run(args.job, json.loads(args.kwargs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
