"""Connecting and disconnecting: the OAuth authorisation-code flow, state bound to the member.

The plain state goes only to the browser; the row keeps its sha256, the member who started it,
whose connection it makes and (Google) the sealed PKCE verifier. A state is used once, by the
same member, within 10 minutes. Organisation-wide connections and QuickBooks need integrations.manage;
any member may connect their own Google calendar."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.integrations.events import IntegrationDisconnected
from spotless.domain.integrations.models import IntegrationConnection, OAuthState
from spotless.domain.integrations.providers import GOOGLE, PROVIDER_NAMES, Provider, provider
from spotless.domain.integrations.schemas import CallbackBody, ConnectStarted
from spotless.domain.integrations.tokens import TIMEOUT, aad, store_tokens, token_request
from spotless.lib.errors import Problem, not_found
from spotless.lib.events import emit
from spotless.lib.sealed import seal, unseal
from spotless.settings import Settings

STATE_TTL = timedelta(minutes=10)
ADMIN = "integrations.manage"  # owners and admins (as for outgoing webhooks)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("ascii", "replace")).hexdigest()


def _provider(name: str, settings: Settings) -> Provider:
    if name not in PROVIDER_NAMES:
        raise not_found("integration provider")
    p = provider(name, settings.integrations)
    if not p.client_id:
        raise Problem(503, "integration-not-configured", "Integration not configured", f"{name} is not set up.")
    return p


def owner_for(principal: Principal, name: str) -> UUID | None:
    """Admins manage the organisation's connection; other members only their own Google calendar."""
    if principal.can(ADMIN):
        return None
    if name == GOOGLE:
        return principal.user_id
    raise Problem(403, "forbidden", "Forbidden", f"Connecting {name} needs the {ADMIN} permission.")


async def start(db: AsyncSession, principal: Principal, settings: Settings, name: str) -> ConnectStarted:
    p = _provider(name, settings)
    owner = owner_for(principal, name)
    state = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = OAuthState(
        org_id=principal.org_id,
        user_id=principal.user_id,
        provider=name,
        owner_user_id=owner,
        state_hash=_hash(state),
        redirect_uri=p.redirect_uri,
        expires_at=now + STATE_TTL,
    )
    params = {
        "response_type": "code",
        "client_id": p.client_id,
        "redirect_uri": p.redirect_uri,
        "scope": " ".join(p.scopes),
        "state": state,
        **p.extra_authorize_params,
    }
    db.add(row)
    await db.flush()
    if p.pkce:
        verifier = secrets.token_urlsafe(48)
        row.code_verifier_sealed = seal(verifier, aad=f"{row.org_id}:{row.id}:pkce")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return ConnectStarted(authorization_url=f"{p.authorize_url}?{urlencode(params)}", expires_at=row.expires_at)


def _bad_state() -> Problem:
    return Problem(400, "oauth-state-invalid", "Invalid state", "The connection attempt is unknown, used or expired.")


async def finish(
    db: AsyncSession, principal: Principal, settings: Settings, name: str, body: CallbackBody
) -> IntegrationConnection:
    p = _provider(name, settings)
    now = datetime.now(UTC)
    # Single use: only one request can flip used_at, and only the member who started it.
    state = await db.scalar(
        update(OAuthState)
        .where(
            OAuthState.state_hash == _hash(body.state),
            OAuthState.provider == name,
            OAuthState.user_id == principal.user_id,
            OAuthState.used_at.is_(None),
            OAuthState.expires_at > now,
        )
        .values(used_at=now)
        .returning(OAuthState)
    )
    if state is None:
        raise _bad_state()
    if name == "quickbooks" and not body.realm_id:
        raise Problem(400, "validation-error", "Invalid request", "realm_id is required for QuickBooks.")
    form = {"grant_type": "authorization_code", "code": body.code, "redirect_uri": state.redirect_uri}
    if state.code_verifier_sealed:
        form["code_verifier"] = unseal(state.code_verifier_sealed, aad=f"{state.org_id}:{state.id}:pkce")
    try:
        response = await token_request(p, form)
    except httpx.HTTPError:
        raise Problem(502, "integration-unreachable", "Provider unreachable", f"{name} did not answer.") from None
    payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or "access_token" not in payload:
        raise Problem(400, "oauth-code-refused", "Authorisation refused", f"{name} refused the authorisation code.")
    if not payload.get("refresh_token"):
        raise Problem(400, "oauth-no-refresh-token", "No offline access", f"{name} granted no refresh token.")
    await db.execute(
        update(IntegrationConnection)
        .where(
            IntegrationConnection.provider == name,
            IntegrationConnection.status != "disconnected",
            IntegrationConnection.owner_user_id.is_(None)
            if state.owner_user_id is None
            else IntegrationConnection.owner_user_id == state.owner_user_id,
        )
        .values(status="disconnected", access_token_sealed=None, refresh_token_sealed=None, access_expires_at=None)
    )
    connection = IntegrationConnection(
        org_id=principal.org_id,
        provider=name,
        owner_user_id=state.owner_user_id,
        external_id=body.realm_id,
        status="active",
    )
    db.add(connection)
    await db.flush()
    store_tokens(connection, payload, now)
    await db.flush()
    return connection


async def visible(db: AsyncSession, principal: Principal) -> list[IntegrationConnection]:
    query = select(IntegrationConnection).where(IntegrationConnection.status != "disconnected")
    if not principal.can(ADMIN):
        query = query.where(IntegrationConnection.owner_user_id == principal.user_id)
    return list(await db.scalars(query.order_by(IntegrationConnection.created_at)))


async def disconnect(db: AsyncSession, principal: Principal, settings: Settings, name: str) -> None:
    if name not in PROVIDER_NAMES:
        raise not_found("integration provider")
    owner = owner_for(principal, name)
    row = await db.scalar(
        select(IntegrationConnection)
        .where(
            IntegrationConnection.provider == name,
            IntegrationConnection.status != "disconnected",
            IntegrationConnection.owner_user_id.is_(None)
            if owner is None
            else IntegrationConnection.owner_user_id == owner,
        )
        .with_for_update()
    )
    if row is None:
        raise not_found("integration connection")
    refresh = unseal(row.refresh_token_sealed, aad=aad(row, "refresh")) if row.refresh_token_sealed else None
    row.status = "disconnected"
    row.access_token_sealed = row.refresh_token_sealed = None
    row.access_expires_at = None
    emit(db, IntegrationDisconnected(org_id=row.org_id, connection_id=row.id, provider=name))
    await db.flush()
    if refresh:
        p = provider(name, settings.integrations)
        # Best effort: the tokens are gone from our side whatever the provider answers.
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                await client.post(p.revoke_url, data={"token": refresh})
        except httpx.HTTPError:
            pass
