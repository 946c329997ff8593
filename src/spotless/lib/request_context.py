"""Per-request context (request id, org, user) that logs and problem details read."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestIdMiddleware:
    """Accepts a well-formed X-Request-ID or makes one; echoes it on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        id_token = _request_id.set(request_id)
        fields_token = _log_fields.set({})
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(id_token)
            _log_fields.reset(fields_token)
