"""A small OAuth 2.0 token server on loopback (uvicorn in a thread, as tests/support/fake_twilio.py).

POST /token (Google's path) and /oauth2/v1/tokens/bearer (QuickBooks'): `authorization_code`
(with a PKCE S256 check when the code was issued with a challenge) and `refresh_token` grants.
Refresh tokens rotate: each refresh spends the one presented and issues a new one, so a refresh
token used twice (two workers racing) answers invalid_grant, as does a revoked one. POST /revoke
revokes. Every refresh is counted in `refreshes`."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn

from tests.support.processes import free_port

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-0123456789"


class FakeOAuth:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.live_refresh: set[str] = set()
        self.access: set[str] = set()
        self.codes: dict[str, str | None] = {}  # code -> PKCE challenge
        self.refreshes = 0
        self.delay_seconds = 0.0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issue_refresh(self) -> str:
        token = "1//refresh-" + secrets.token_urlsafe(12)
        with self.lock:
            self.live_refresh.add(token)
        return token

    def revoke_all(self) -> None:
        with self.lock:
            self.live_refresh.clear()

    def start(self) -> FakeOAuth:
        self.port = free_port()
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-oauth", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OAuth server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.delay_seconds:
            import asyncio

            await asyncio.sleep(self.delay_seconds)
        status, payload = self._handle(scope["path"], headers, dict(parse_qsl(body.decode())))
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _client_ok(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return headers.get("authorization") == basic or (
            form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET
        )

    def _tokens(self) -> dict[str, Any]:
        access = "ya29.access-" + secrets.token_urlsafe(12)
        self.access.add(access)
        return {
            "access_token": access,
            "expires_in": 3599,
            "refresh_token": self.issue_refresh(),
            "token_type": "Bearer",
        }

    def _handle(self, path: str, headers: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
        if path == "/revoke":
            with self.lock:
                self.live_refresh.discard(form.get("token", ""))
            return 200, {}
        if path not in ("/token", "/oauth2/v1/tokens/bearer"):
            return 404, {"error": "not_found"}
        if not self._client_ok(headers, form):
            return 401, {"error": "invalid_client"}
        with self.lock:
            grant = form.get("grant_type")
            if grant == "refresh_token":
                presented = form.get("refresh_token", "")
                if presented not in self.live_refresh:
                    return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                self.live_refresh.discard(presented)  # rotation: a refresh token works once
                self.refreshes += 1
                return 200, self._tokens()
            if grant == "authorization_code":
                code = form.get("code", "")
                if code not in self.codes:
                    return 400, {"error": "invalid_grant"}
                challenge = self.codes.pop(code)
                if challenge is not None:
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    if digest.decode() != challenge:
                        return 400, {"error": "invalid_grant", "error_description": "code_verifier mismatch"}
                return 200, self._tokens()
            return 400, {"error": "unsupported_grant_type"}


@pytest.fixture
def fake_oauth(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOAuth]:
    fake = FakeOAuth().start()
    for name, value in {
        "GOOGLE_OAUTH_BASE_URL": fake.base_url,
        "GOOGLE_OAUTH_CLIENT_ID": CLIENT_ID,
        "GOOGLE_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "QUICKBOOKS_OAUTH_BASE_URL": fake.base_url,
        "QUICKBOOKS_OAUTH_CLIENT_ID": CLIENT_ID,
        "QUICKBOOKS_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield fake
    finally:
        fake.stop()
