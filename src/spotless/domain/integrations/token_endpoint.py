"""Our OAuth 2.0 client for the providers' token and revoke endpoints (RFC 6749 §4.1.3, §6;
RFC 7009), over httpx with a timeout. Client authentication is HTTP Basic, which both Google and
Intuit accept. Nothing here logs or raises a token: errors carry the OAuth error code only."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import msgspec

from spotless.domain.integrations.errors import ProviderRefused, ProviderUnavailable
from spotless.domain.integrations.providers import Provider

logger = logging.getLogger("spotless.integrations.oauth")


class TokenAnswer(msgspec.Struct, kw_only=True):
    access_token: str
    expires_in: int = 3_600
    token_type: str = "Bearer"
    refresh_token: str | None = None
    scope: str | None = None
    id_token: str | None = None


class GrantRefused(Exception):
    """`invalid_grant`: the code or refresh token is no longer good (revoked, expired, used)."""


def _basic(provider: Provider) -> str:
    raw = f"{provider.client_id}:{provider.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


async def _post(
    provider: Provider, url: str, form: dict[str, str], timeout_seconds: float, *, as_json: bool = False
) -> httpx.Response:
    headers = {"Authorization": _basic(provider), "Accept": "application/json"}
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as http:
            if as_json:
                return await http.post(url, json=form, headers=headers)
            return await http.post(url, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{provider.name} token endpoint unreachable: {type(exc).__name__}") from None


def _oauth_error(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, dict) else ""


async def _token_call(provider: Provider, form: dict[str, str], timeout_seconds: float) -> TokenAnswer:
    response = await _post(provider, provider.token_url, form, timeout_seconds)
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderUnavailable(f"{provider.name} token endpoint answered {response.status_code}")
    if response.status_code != 200:
        error = _oauth_error(response)
        if error == "invalid_grant":
            raise GrantRefused(error)
        raise ProviderRefused(f"{provider.name} token endpoint refused us: {response.status_code} {error or '?'}")
    try:
        return msgspec.json.decode(response.content, type=TokenAnswer)
    except msgspec.ValidationError:
        raise ProviderRefused(f"{provider.name} token endpoint answered an unreadable token") from None


async def exchange_code(
    provider: Provider, *, code: str, redirect_uri: str, code_verifier: str | None, timeout_seconds: float
) -> TokenAnswer:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return await _token_call(provider, form, timeout_seconds)


async def refresh(provider: Provider, *, refresh_token: str, timeout_seconds: float) -> TokenAnswer:
    return await _token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout_seconds)


async def revoke(provider: Provider, *, token: str, timeout_seconds: float) -> bool:
    """True when the provider confirmed, False when it refused (the grant was already gone).
    Raises ProviderUnavailable when it could not be reached or answered 429/5xx (worth retrying)."""
    # Intuit's revoke endpoint takes JSON; Google's (RFC 7009) a form.
    as_json = provider.name == "quickbooks"
    response = await _post(provider, provider.revoke_url, {"token": token}, timeout_seconds, as_json=as_json)
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderUnavailable(f"{provider.name} revoke endpoint answered {response.status_code}")
    if response.status_code != 200:
        logger.warning("%s revoke answered %s", provider.name, response.status_code)
    return response.status_code == 200
