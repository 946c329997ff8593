"""A valid access token for a connection, refreshed when it is about to expire.

The refresh runs in a transaction of its own, holding the connection row (SELECT ... FOR UPDATE):
two workers never both spend one refresh token, the second finds the first's fresh access token,
and a rotated refresh token is committed even when the caller's transaction later rolls back.
A refused grant (invalid_grant) marks the connection needs_reconnect and requests one office
notice, committed before NeedsReconnect is raised."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.engine import SESSION_INFO, bind_org
from spotless.db.unit_of_work import commit, rollback
from spotless.domain.integrations.errors import NeedsReconnect
from spotless.domain.integrations.messages import NEEDS_RECONNECT
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.providers import Provider, provider
from spotless.domain.messaging.public import office_recipients, request_message
from spotless.lib.sealed import seal, unseal
from spotless.settings import load_settings

EARLY = timedelta(minutes=5)
TIMEOUT = httpx.Timeout(10.0)
NOTIFY_PERMISSION = "settings.manage"


class RefreshFailed(Exception):
    """The provider could not be reached or answered an error other than invalid_grant: retry later."""


def aad(connection: IntegrationConnection, purpose: str) -> str:
    return f"{connection.org_id}:{connection.id}:{purpose}"


def store_tokens(connection: IntegrationConnection, payload: dict[str, Any], now: datetime) -> None:
    """A token response onto the row, sealed; a refresh token is kept unless a new one is sent."""
    connection.access_token_sealed = seal(str(payload["access_token"]), aad=aad(connection, "access"))
    connection.access_expires_at = now + timedelta(seconds=int(payload.get("expires_in", 3600)))
    if payload.get("refresh_token"):
        connection.refresh_token_sealed = seal(str(payload["refresh_token"]), aad=aad(connection, "refresh"))
    if payload.get("scope"):
        connection.scopes = str(payload["scope"])


async def token_request(p: Provider, form: dict[str, str]) -> httpx.Response:
    auth: httpx.Auth | None = httpx.BasicAuth(p.client_id, p.client_secret) if p.basic_auth else None
    if not p.basic_auth:
        form = {**form, "client_id": p.client_id, "client_secret": p.client_secret}
    async with httpx.AsyncClient(timeout=TIMEOUT, auth=auth) as client:
        return await client.post(p.token_url, data=form, headers={"Accept": "application/json"})


def _fresh(connection: IntegrationConnection, now: datetime) -> bool:
    return bool(
        connection.access_token_sealed and connection.access_expires_at and connection.access_expires_at - EARLY > now
    )


async def access_token(session: AsyncSession, connection_id: UUID, *, org_id: UUID) -> str:
    now = datetime.now(UTC)
    row = await session.scalar(
        select(IntegrationConnection).where(
            IntegrationConnection.id == connection_id, IntegrationConnection.org_id == org_id
        )
    )
    if row is None or row.status != "active":
        raise NeedsReconnect(connection_id)
    if _fresh(row, now) and row.access_token_sealed:
        return unseal(row.access_token_sealed, aad=aad(row, "access"))
    own = AsyncSession(bind=session.bind, expire_on_commit=False, info=dict(SESSION_INFO))
    bind_org(own, org_id)
    async with own:
        try:
            token = await _refresh_locked(own, connection_id, org_id)
        except BaseException:
            await rollback(own)
            raise
        await commit(own)
    if token is None:
        raise NeedsReconnect(connection_id)
    return token


async def _refresh_locked(session: AsyncSession, connection_id: UUID, org_id: UUID) -> str | None:
    """The token, or None when the grant was refused (the row is marked; the caller commits)."""
    locked = await session.scalar(
        select(IntegrationConnection)
        .where(IntegrationConnection.id == connection_id, IntegrationConnection.org_id == org_id)
        .with_for_update()
    )
    if locked is None or locked.status != "active" or not locked.refresh_token_sealed:
        raise NeedsReconnect(connection_id)
    now = datetime.now(UTC)
    if _fresh(locked, now) and locked.access_token_sealed:  # another worker refreshed while we waited
        return unseal(locked.access_token_sealed, aad=aad(locked, "access"))
    p = provider(locked.provider, load_settings().integrations)
    refresh = unseal(locked.refresh_token_sealed, aad=aad(locked, "refresh"))
    try:
        response = await token_request(p, {"grant_type": "refresh_token", "refresh_token": refresh})
    except httpx.HTTPError as exc:
        raise RefreshFailed(f"{p.name} token endpoint unreachable: {type(exc).__name__}") from None
    body: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        body = response.json()
    if response.status_code == 400 and body.get("error") == "invalid_grant":
        await _needs_reconnect(session, locked)
        return None
    if response.status_code != 200 or "access_token" not in body:
        raise RefreshFailed(f"{p.name} token refresh answered {response.status_code}")
    store_tokens(locked, body, now)
    await session.flush()
    return str(body["access_token"])


async def _needs_reconnect(session: AsyncSession, connection: IntegrationConnection) -> None:
    connection.status = "needs_reconnect"
    connection.incident += 1
    connection.access_token_sealed = None
    connection.access_expires_at = None
    connection.last_error = "the provider refused the grant (invalid_grant)"
    for recipient in await office_recipients(session, connection.org_id, NOTIFY_PERMISSION):
        await request_message(
            session,
            org_id=connection.org_id,
            kind=NEEDS_RECONNECT.name,
            recipient=recipient,
            subject_type="integration_connection",
            subject_id=connection.id,
            send_key=f"integration.needs_reconnect:{connection.id}:{connection.incident}",
            params={"provider": connection.provider},
        )
