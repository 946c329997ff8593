"""A small OAuth 2.0 authorization server on loopback playing both Google's and Intuit's parts,
served by uvicorn in a thread of the test process (as tests/support/fake_twilio.py is), so tests
reach into its state directly while our real client talks to it over TCP.

    fake = FakeOAuth().start()       # or the `fake_oauth` fixture
    settings = make_settings(**fake.env())

Under `/google` and `/quickbooks` (the *_OAUTH_BASE_URL settings point there) it serves:
- the authorize endpoint (GET): the member "consents" at once and is redirected (302) to the
  redirect URI with `code` and `state` (QuickBooks adds `realmId`). `client_id`, `redirect_uri`,
  `response_type=code` and `scope` are checked; a `code_challenge` must be S256;
- the token endpoint (POST, HTTP Basic client authentication, 401 `invalid_client` otherwise):
  `authorization_code` (single-use code, same redirect URI, the PKCE verifier when a challenge
  was sent: `invalid_grant` otherwise) and `refresh_token`. QuickBooks rotates the refresh token
  on every refresh and the previous one stops working (stricter than Intuit, who keep it a while:
  it proves we always persist the newest); Google keeps it and sends none back. A revoked grant
  answers `invalid_grant`;
- the revoke endpoint (POST): the grant (by its refresh or access token) is revoked.

Controls: `revoke_grant(refresh_token)`, `fail_next` (statuses the token endpoint answers next),
`refresh_delay` (seconds a refresh takes: widens a race), `access_ttl`; `refreshes` counts
refresh calls, `valid_access(token)` says whether an access token works."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import uvicorn

from tests.support.processes import free_port

CLIENTS = {
    "google": ("google-client-id.apps.example", "google-client-secret-0123456789"),
    "quickbooks": ("qbo-client-id-ABCDEF", "qbo-client-secret-0123456789"),
}
REDIRECTS = {
    "google": "https://app.example.com/settings/integrations/google",
    "quickbooks": "https://app.example.com/settings/integrations/quickbooks",
}
PATHS = {
    "google": {"authorize": "/o/oauth2/v2/auth", "token": "/token", "revoke": "/revoke"},
    "quickbooks": {
        "authorize": "/connect/oauth2",
        "token": "/oauth2/v1/tokens/bearer",
        "revoke": "/v2/oauth2/tokens/revoke",
    },
}


@dataclass
class Grant:
    provider: str
    scope: str
    refresh_token: str
    realm_id: str | None = None
    email: str | None = None
    access_tokens: set[str] = field(default_factory=set)
    revoked: bool = False
    refreshes: int = 0


@dataclass
class _Code:
    provider: str
    redirect_uri: str
    scope: str
    challenge: str | None
    used: bool = False


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeOAuth:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.codes: dict[str, _Code] = {}
        self.grants: list[Grant] = []
        self.fail_next: list[int] = []
        self.refresh_delay = 0.0
        self.access_ttl = 3_600
        self.next_email = "cleaner@example.com"
        self.next_realm = "9130354857392"
        # What the member leaves ticked on the consent screen (None: everything asked for).
        self.granted_scope: str | None = None
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.revoked_tokens: list[str] = []
        # A status the revoke endpoint answers instead (None: it works).
        self.fail_revoke: int | None = None
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "GOOGLE_OAUTH_CLIENT_ID": CLIENTS["google"][0],
            "GOOGLE_OAUTH_CLIENT_SECRET": CLIENTS["google"][1],
            "GOOGLE_OAUTH_REDIRECT_URI": REDIRECTS["google"],
            "GOOGLE_OAUTH_BASE_URL": f"{self.base_url}/google",
            "QUICKBOOKS_OAUTH_CLIENT_ID": CLIENTS["quickbooks"][0],
            "QUICKBOOKS_OAUTH_CLIENT_SECRET": CLIENTS["quickbooks"][1],
            "QUICKBOOKS_OAUTH_REDIRECT_URI": REDIRECTS["quickbooks"],
            "QUICKBOOKS_OAUTH_BASE_URL": f"{self.base_url}/quickbooks",
            "INTEGRATION_OAUTH_TIMEOUT_SECONDS": "5",
        }

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

    # --- controls --------------------------------------------------------------------------------

    def grant_of(self, token: str) -> Grant | None:
        with self.lock:
            for grant in self.grants:
                if token == grant.refresh_token or token in grant.access_tokens:
                    return grant
        return None

    def revoke_grant(self, token: str) -> None:
        """The member revoked our access in the provider's account settings."""
        grant = self.grant_of(token)
        assert grant is not None, "no grant holds that token"
        grant.revoked = True

    def valid_access(self, token: str) -> bool:
        grant = self.grant_of(token)
        return grant is not None and not grant.revoked and token in grant.access_tokens

    @property
    def refreshes(self) -> int:
        with self.lock:
            return sum(g.refreshes for g in self.grants)

    def issue_grant(self, provider: str, *, scope: str = "", realm_id: str | None = None) -> tuple[str, str]:
        """A grant made outside a connect flow (tests that seed a connection): (access, refresh)."""
        with self.lock:
            grant = Grant(provider, scope, "rt-" + secrets.token_urlsafe(24), realm_id=realm_id)
            access = "at-" + secrets.token_urlsafe(24)
            grant.access_tokens.add(access)
            self.grants.append(grant)
            return access, grant.refresh_token

    # --- ASGI ------------------------------------------------------------------------------------

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
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        provider, _, rest = scope["path"].lstrip("/").partition("/")
        path = "/" + rest
        status, payload, extra = 404, {"error": "not_found"}, []
        if provider in PATHS:
            paths = PATHS[provider]
            if scope["method"] == "GET" and path == paths["authorize"]:
                status, payload, extra = self._authorize(provider, query)
            elif scope["method"] == "POST" and path == paths["token"]:
                if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    form = dict(parse_qsl(body.decode()))
                    if form.get("grant_type") == "refresh_token" and self.refresh_delay:
                        await asyncio.sleep(self.refresh_delay)
                    status, payload = self._token(provider, headers, form)
                else:
                    status, payload = 400, {"error": "invalid_request"}
            elif scope["method"] == "POST" and path == paths["revoke"]:
                status, payload = self._revoke(provider, headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _authorize(self, provider: str, query: dict[str, str]) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        self.authorize_requests.append(dict(query))
        if query.get("client_id") != CLIENTS[provider][0]:
            return 400, {"error": "invalid_client"}, []
        if query.get("response_type") != "code" or not query.get("scope") or not query.get("state"):
            return 400, {"error": "invalid_request"}, []
        if query.get("redirect_uri") != REDIRECTS[provider]:
            return 400, {"error": "redirect_uri_mismatch"}, []
        challenge = query.get("code_challenge")
        if challenge and query.get("code_challenge_method") != "S256":
            return 400, {"error": "invalid_request", "error_description": "S256 only"}, []
        code = "code-" + secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = _Code(provider, query["redirect_uri"], query["scope"], challenge)
        params = {"code": code, "state": query["state"]}
        if provider == "quickbooks":
            params["realmId"] = self.next_realm
        location = f"{query['redirect_uri']}?{urlencode(params)}"
        return 302, {}, [(b"location", location.encode())]

    def _client_ok(self, provider: str, headers: dict[str, str]) -> bool:
        expected = base64.b64encode(":".join(CLIENTS[provider]).encode()).decode()
        return headers.get("authorization") == f"Basic {expected}"

    def _token(self, provider: str, headers: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            self.token_requests.append({"provider": provider, **form})
            if not self._client_ok(provider, headers):
                return 401, {"error": "invalid_client"}
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "temporarily_unavailable"}
            if form.get("grant_type") == "authorization_code":
                return self._exchange(provider, form)
            if form.get("grant_type") == "refresh_token":
                return self._refresh(provider, form)
            return 400, {"error": "unsupported_grant_type"}

    def _answer(self, grant: Grant, *, with_refresh: bool, with_id: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        grant.access_tokens.add(access)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": grant.scope,
        }
        if with_refresh:
            answer["refresh_token"] = grant.refresh_token
            if grant.provider == "quickbooks":
                answer["x_refresh_token_expires_in"] = 8_726_400
        if with_id and grant.email:
            claims = {"iss": "https://accounts.google.com", "email": grant.email, "email_verified": True}
            encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            answer["id_token"] = f"eyJhbGciOiJub25lIn0.{encoded}.sig"
        return answer

    def _exchange(self, provider: str, form: dict[str, str]) -> tuple[int, Any]:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.provider != provider:
            return 400, {"error": "invalid_grant"}
        code.used = True  # single use, even when what follows fails
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier or _s256(verifier) != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "code_verifier mismatch"}
        grant = Grant(
            provider,
            self.granted_scope if self.granted_scope is not None else code.scope,
            "rt-" + secrets.token_urlsafe(24),
            realm_id=self.next_realm if provider == "quickbooks" else None,
            email=self.next_email if provider == "google" else None,
        )
        self.grants.append(grant)
        return 200, self._answer(grant, with_refresh=True, with_id="openid" in code.scope.split())

    def _refresh(self, provider: str, form: dict[str, str]) -> tuple[int, Any]:
        grant = next(
            (g for g in self.grants if g.provider == provider and g.refresh_token == form.get("refresh_token")), None
        )
        if grant is None or grant.revoked:
            return 400, {"error": "invalid_grant"}
        grant.refreshes += 1
        if provider == "quickbooks":
            grant.refresh_token = "rt-" + secrets.token_urlsafe(24)  # the old one stops working
        return 200, self._answer(grant, with_refresh=provider == "quickbooks", with_id=False)

    def _revoke(self, provider: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if self.fail_revoke is not None:
            return self.fail_revoke, {"error": "backend_error"}
        if provider == "quickbooks":
            if not self._client_ok(provider, headers):
                return 401, {"error": "invalid_client"}
            token = str(json.loads(body or b"{}").get("token", ""))
        else:
            token = dict(parse_qsl(body.decode())).get("token", "")
        grant = self.grant_of(token)
        if grant is None:
            return 400, {"error": "invalid_token"}
        grant.revoked = True
        self.revoked_tokens.append(token)
        return 200, {}


def consent(location: str) -> dict[str, str]:
    """The code, state (and realmId) the provider's redirect carries (what the admin page posts)."""
    return dict(parse_qsl(urlsplit(location).query))


@pytest.fixture
def fake_oauth() -> Iterator[FakeOAuth]:
    fake = FakeOAuth().start()
    try:
        yield fake
    finally:
        fake.stop()
