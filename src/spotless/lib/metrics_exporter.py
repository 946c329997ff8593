"""/metrics for processes without an HTTP server: Dramatiq workers and the scheduler.

The API's /metrics aggregates the files of its own container's PROMETHEUS_MULTIPROC_DIR; a worker
container's series (job counters, `bookings_total` counted by its subscriber) live in the worker's
own directory, so without this they are never scraped. One process per directory wins a file lock
and serves every process of that directory on METRICS_PROCESS_PORT, behind the same bearer
METRICS_TOKEN as the API. When the serving process dies its lock goes with it and a process
restarted by Dramatiq takes it."""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import ThreadingWSGIServer

from spotless.settings import MetricsSettings

logger = logging.getLogger("spotless.metrics")
_lock_file: IO[str] | None = None  # held for the life of the serving process


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _registry(settings: MetricsSettings) -> CollectorRegistry:
    if not settings.multiproc_dir:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.multiproc_dir)
    return registry


def metrics_app(settings: MetricsSettings) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    expected = f"Bearer {settings.token}".encode() if settings.token else None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"a bearer METRICS_TOKEN is required\n"]
        body = generate_latest(_registry(settings))
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _claim(settings: MetricsSettings) -> bool:
    """True for the one process of this metrics directory that serves it."""
    global _lock_file
    if _lock_file is not None:
        return False  # this process already serves
    directory = settings.multiproc_dir or tempfile.gettempdir()
    handle = open(os.path.join(directory, f"exporter-{settings.process_port}.lock"), "w")  # noqa: SIM115 - held open
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _lock_file = handle
    return True


def serve_process_metrics(settings: MetricsSettings, host: str = "0.0.0.0") -> int | None:
    """Serve this directory's metrics from a daemon thread if no other process does; returns the
    port served, or None (disabled, or another process serves)."""
    if not settings.enabled or settings.process_port == 0 or not _claim(settings):
        return None
    try:
        server = make_server(
            host, settings.process_port, metrics_app(settings), ThreadingWSGIServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        logger.warning("metrics exporter not started: %s", exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()
    logger.info("metrics exporter listening", extra={"port": settings.process_port})
    return settings.process_port
