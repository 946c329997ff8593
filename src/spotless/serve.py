"""`python -m spotless.serve`: the API server, as `just api` and the container image start it.

    API_SERVER        granian (default) or uvicorn
    HOST, PORT        where to listen (0.0.0.0:8000)
    WEB_CONCURRENCY   worker processes; default the cores this process may run on (`nproc`)

Granian is the default: it parses HTTP and does the socket I/O in Rust, so a request costs our
worker's Python thread only the ASGI app itself; uvicorn (with uvloop and httptools) runs its
protocol callbacks in Python. Both: the factory `spotless.app:create_app_from_env`, uvloop, no
access log of their own (the app writes one line per request), no proxy-header rewriting (the app
judges proxies itself: TRUST_PROXY_HEADERS), no websockets (the API has none)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence

FACTORY = "spotless.app:create_app_from_env"
SERVERS = ("granian", "uvicorn")
DEFAULT_SERVER = "granian"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def command(env: Mapping[str, str]) -> list[str]:
    """The server's argv for this environment; a bad value stops the start with its name."""
    server = (env.get("API_SERVER") or DEFAULT_SERVER).strip().lower()
    if server not in SERVERS:
        raise SystemExit(f"API_SERVER must be one of {', '.join(SERVERS)} (got {server!r})")
    host = env.get("HOST") or "0.0.0.0"
    port = env.get("PORT") or "8000"
    raw = (env.get("WEB_CONCURRENCY") or "").strip()
    try:
        workers = int(raw) if raw else cores()
    except ValueError:
        raise SystemExit(f"WEB_CONCURRENCY must be a whole number (got {raw!r})") from None
    if workers < 1:
        raise SystemExit(f"WEB_CONCURRENCY must be at least 1 (got {workers})")
    if server == "granian":
        return [
            "granian",
            *("--interface", "asgi", "--factory", "--host", host, "--port", port),
            *("--workers", str(workers), "--loop", "uvloop", "--http", "1"),
            *("--no-ws", "--no-access-log", "--respawn-failed-workers"),
            FACTORY,
        ]
    return [
        "uvicorn",
        *("--factory", FACTORY, "--host", host, "--port", port, "--workers", str(workers)),
        *("--loop", "uvloop", "--http", "httptools", "--ws", "none"),
        *("--no-access-log", "--no-proxy-headers"),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = command(os.environ)
    # The server next to this interpreter (the project's venv), else whatever PATH finds.
    local = os.path.join(os.path.dirname(sys.executable), args[0])
    executable = local if os.path.exists(local) else (shutil.which(args[0]) or args[0])
    # Replaced by the server (signals reach it directly; no shell in between).
    os.execv(executable, [executable, *args[1:], *(argv if argv is not None else sys.argv[1:])])  # noqa: S606


if __name__ == "__main__":
    main()
