"""Per-request context (request id, org, user) that logs and problem details read."""

from __future__ import annotations

import re
from contextvars import ContextVar, Token
from typing import Any

from litestar.types import Scope

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_log_fields: ContextVar[dict[str, Any] | None] = ContextVar("log_fields", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
REQUEST_ID_HEADER = b"x-request-id"


def current_request_id() -> str | None:
    return _request_id.get()


def annotate(**fields: Any) -> None:
    """Attach fields (org_id, user_id ...) to this request's access log line."""
    bag = _log_fields.get()
    if bag is not None:
        bag.update({k: str(v) for k, v in fields.items() if v is not None})


def log_fields() -> dict[str, Any]:
    return dict(_log_fields.get() or {})


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1").strip()
            # A malformed id is replaced rather than trusted into our logs.
            return candidate if _VALID_ID.match(candidate) else None
    return None


def enter_request(request_id: str) -> tuple[dict[str, Any], tuple[Token[str | None], Token[dict[str, Any] | None]]]:
    """Make `request_id` and a fresh bag of log fields this request's context (the outermost
    middleware, lib/logging.py `RequestObserver`, does it); returns the bag and what to reset."""
    fields: dict[str, Any] = {}
    return fields, (_request_id.set(request_id), _log_fields.set(fields))


def leave_request(tokens: tuple[Token[str | None], Token[dict[str, Any] | None]]) -> None:
    _request_id.reset(tokens[0])
    _log_fields.reset(tokens[1])
