"""JSON-lines logging. Every line carries the request id; secrets are redacted by key name."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from spotless.lib.metrics import HTTP_5XX
from spotless.lib.request_context import current_request_id, log_fields

_SECRET_MARKERS = ("password", "secret", "token", "authorization", "api_key", "cookie")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _redact(key: str, value: Any) -> Any:
    return "[redacted]" if any(marker in key.lower() for marker in _SECRET_MARKERS) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
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
