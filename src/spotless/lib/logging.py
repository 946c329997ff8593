"""JSON-lines logging. Every line carries the request id; secrets are redacted by key name, and
database errors are logged by SQLSTATE, constraint and statement, never by message: PostgreSQL and
asyncpg quote the offending values there (`Key (email)=(...)`, `invalid input syntax: "..."`), and
the engines hide bound parameters for the same reason (`hide_parameters=True`)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import exc as sa_exc

from spotless.lib.metrics import HTTP_IN_PROGRESS, METRICS_EXCLUDED, record_request
from spotless.lib.request_context import (
    REQUEST_ID_HEADER,
    current_request_id,
    enter_request,
    incoming_request_id,
    leave_request,
)

_SECRET_MARKERS = ("password", "secret", "token", "authorization", "api_key", "cookie")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@lru_cache(maxsize=1024)
def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _redact(key: str, value: Any) -> Any:
    return "[redacted]" if _is_secret(key) else value


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DBAPIError) or type(exc).__module__.startswith(("asyncpg", "sqlalchemy.dialects"))


def _db_attr(exc: BaseException, *names: str) -> Any:
    for candidate in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        for name in names:
            value = getattr(candidate, name, None)
            if value:
                return value
    return None


def safe_error_text(exc: BaseException) -> str:
    """What may be logged about an exception: for database errors, no message and no values."""
    if not _is_database_error(exc):
        return str(exc)
    parts = [f"database error sqlstate={_db_attr(exc, 'sqlstate', 'pgcode') or 'unknown'}"]
    for label, names in (
        ("constraint", ("constraint_name",)),
        ("table", ("table_name",)),
        ("column", ("column_name",)),
    ):
        value = _db_attr(exc, *names)
        if value:
            parts.append(f"{label}={value}")
    parts.append("(message withheld: it may quote values)")
    statement = getattr(exc, "statement", None)
    if statement:
        parts.append(f"[SQL: {str(statement)[:2000]}]")
    return " ".join(parts)


def format_exception_safely(exc: BaseException) -> str:
    """Like `traceback.format_exception`, with every database error in the chain reduced to
    `safe_error_text` (the chained asyncpg error carries the DETAIL line with the values)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines: list[str] = []
    for index, item in enumerate(reversed(chain)):
        if index:
            lines.append("\nThe above exception led to the following one:\n\n")
        if item.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_tb(item.__traceback__))
        lines.append(f"{type(item).__module__}.{type(item).__qualname__}: {safe_error_text(item)}\n")
    return "".join(lines).rstrip("\n")


def _message(record: logging.LogRecord) -> str:
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, BaseException) and _is_database_error(a) for a in args):
        safe = tuple(safe_error_text(a) if isinstance(a, BaseException) else a for a in args)
        return str(record.msg) % safe if safe else str(record.msg)
    if isinstance(record.msg, BaseException):
        return safe_error_text(record.msg)
    return record.getMessage()


class JsonFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        value = ei[1] if isinstance(ei, tuple) else None
        return format_exception_safely(value) if isinstance(value, BaseException) else super().formatException(ei)

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
        }
        request_id = current_request_id()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = _redact(key, value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Resolves sys.stdout at emit time, so redirected stdout (tests, supervisors) is honoured."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_DIRECT_ACCESS_LINES = False


def configure_logging(level: str = "INFO") -> None:
    global _DIRECT_ACCESS_LINES
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "granian.access"):
        logging.getLogger(noisy).disabled = True
    # Access lines are written straight to stdout, encoded once (see `write_access_line`), while our
    # handler is the one in charge; anyone who reconfigures logging gets them through logging again.
    _DIRECT_ACCESS_LINES = True


access_logger = logging.getLogger("spotless.access")
# Liveness probes (every few seconds from each load balancer and kubelet) write no access line
# unless they fail; their count and latency are in the metrics.
QUIET_PATHS = frozenset({"/healthz"})
_ACCESS_LOGGER_NAME = access_logger.name


def write_access_line(fields: dict[str, Any], annotated: dict[str, Any]) -> None:
    """The request's one access-log line: the same JSON object `JsonFormatter` writes (ts, level,
    logger, msg, request_id, then `fields`, then the `annotate()`d fields, redacted by key name),
    built from a dict and encoded once with msgspec."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    root_handlers = logging.getLogger().handlers
    if not _DIRECT_ACCESS_LINES or len(root_handlers) != 1 or type(root_handlers[0]) is not _StdoutHandler:
        access_logger.info("request", extra={**fields, **annotated})
        return
    now = time.time()
    line: dict[str, Any] = {
        "ts": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "logger": _ACCESS_LOGGER_NAME,
        "msg": "request",
    }
    request_id = current_request_id()
    if request_id:
        line["request_id"] = request_id
    line.update(fields)
    for key in annotated:
        line[key] = _redact(key, annotated[key])
    stream = sys.stdout
    stream.write(_encode_line(line).decode() + "\n")
    stream.flush()


_encode_line = msgspec.json.Encoder(enc_hook=str).encode


class RequestObserver:
    """Outermost pure-ASGI layer, one per request: the request id (accepted when well formed, else
    made; echoed on every response), the status captured once, then the access-log line (method,
    route template, never the raw path with ids; status; latency) and, with metrics on, the
    request metrics (lib/metrics.py `record_request`). One `send` wrapper for all of it."""

    def __init__(self, app: ASGIApp, *, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # 32 random hex digits as uuid4().hex, without building a UUID (~4 % of /healthz on a profile).
        request_id = incoming_request_id(scope) or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        fields, tokens = enter_request(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        status = 500
        measured = self.metrics and scope["path"] not in METRICS_EXCLUDED

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if measured:
            HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, observe)
        except Exception as exc:
            # Raised past us before answering (a 401 from the authentication middleware): the outer
            # exception handler answers with the exception's own status, not a 500.
            if status == 500:
                status = int(getattr(exc, "status_code", 500))
            raise
        finally:
            elapsed = time.perf_counter() - started
            method: str = scope.get("method", "GET")  # type: ignore[assignment]
            template: str | None = scope.get("path_template")
            if measured:
                HTTP_IN_PROGRESS.dec()
            record_request(method, template or "<unmatched>", status, elapsed, measured and bool(template))
            if status >= 400 or scope["path"] not in QUIET_PATHS:
                write_access_line(
                    {
                        "method": method,
                        "route": template or "<unmatched>",
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 2),
                    },
                    fields,
                )
            leave_request(tokens)
