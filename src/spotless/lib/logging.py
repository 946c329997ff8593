"""JSON-lines logging. Every line carries the request id; secrets are redacted by key name, and
database errors are logged by SQLSTATE, constraint and statement, never by message: PostgreSQL and
asyncpg quote the offending values there (`Key (email)=(...)`, `invalid input syntax: "..."`), and
the engines hide bound parameters for the same reason (`hide_parameters=True`)."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import exc as sa_exc

from spotless.lib.metrics import HTTP_5XX
from spotless.lib.request_context import current_request_id, log_fields

_SECRET_MARKERS = ("password", "secret", "token", "authorization", "api_key", "cookie")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _redact(key: str, value: Any) -> Any:
    return "[redacted]" if any(marker in key.lower() for marker in _SECRET_MARKERS) else value


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


def configure_logging(level: str = "INFO") -> None:
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


access_logger = logging.getLogger("spotless.access")


class AccessLogMiddleware:
    """One line per request: method, route template (never the raw path with ids), status, latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            # Raised past us before answering (a 401 from the authentication middleware): the outer
            # exception handler answers with the exception's own status, not a 500.
            if status == 500:
                status = int(getattr(exc, "status_code", 500))
            raise
        finally:
            route = scope.get("path_template") or "<unmatched>"
            if status >= 500:
                HTTP_5XX.labels(method=scope.get("method", "GET"), path=route).inc()
            access_logger.info(
                "request",
                extra={
                    "method": scope.get("method", "GET"),
                    "route": route,
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    **log_fields(),
                },
            )
