"""A valid access token for a connection, refreshed before it expires.

The refresh runs in a transaction of its own, under `SELECT ... FOR NO KEY UPDATE` of the
connection row (not the caller's): the provider has already rotated the refresh token when it
answers, so its answer must be committed whatever the caller does next (a caller that rolls back
would otherwise lose the only refresh token that still works; QuickBooks rotates them about daily).
A second worker arriving meanwhile waits for the lock, then finds the fresh token and calls nobody:
one refresh per expiry, however many workers. (FOR NO KEY UPDATE does not wait for the caller's own
transaction that merely references the row, e.g. inserting a row with a foreign key onto it.)

`invalid_grant` is final: the row becomes `needs_reconnect` in that same committed transaction,
one IntegrationNeedsReconnect event tells the office (messaging), and NeedsReconnect is raised.
From then on every call raises NeedsReconnect at once without calling the provider (no retry
storm), and the pollers' claim skips the connection, until a member connects again.
Timeouts, connection errors, 429 and 5xx raise ProviderUnavailable and change nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.db.engine import bind_org, session_factory
from spotless.domain.integrations import token_endpoint
from spotless.domain.integrations.errors import NeedsReconnect, ProviderUnavailable
from spotless.domain.integrations.events import IntegrationNeedsReconnect
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.providers import provider
from spotless.lib.events import emit
from spotless.lib.sealed import KeyRing
from spotless.settings import Settings

logger = logging.getLogger("spotless.integrations.tokens")

# The caller's own transaction may hold the row (it should not: see access_token); never wait forever.
LOCK_TIMEOUT = "10s"


def access_aad(org_id: UUID, connection_id: UUID) -> str:
    return f"{org_id}:{connection_id}:access"


def refresh_aad(org_id: UUID, connection_id: UUID) -> str:
    return f"{org_id}:{connection_id}:refresh"


def _fresh(row: IntegrationConnection, now: datetime, margin_seconds: int) -> bool:
    return (
        row.access_token_sealed is not None
        and row.access_expires_at is not None
        and row.access_expires_at > now + timedelta(seconds=margin_seconds)
    )


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from spotless.lib.jobs.runtime import get_runtime

    return get_runtime().settings


async def access_token(
    session: AsyncSession,
    connection_id: UUID,
    *,
    org_id: UUID,
    force_refresh: bool = False,
    settings: Settings | None = None,
) -> str:
    """The connection's access token, valid for at least INTEGRATION_REFRESH_MARGIN_SECONDS.

    `session` is the caller's (bound to `org_id`); a refresh commits in its own transaction, so
    call this before your transaction updates or locks the connection row. `force_refresh`: the
    provider answered 401 to the token we gave you (revoked early): refresh now, whatever its
    expiry says. Raises NeedsReconnect (stop, do not retry) or ProviderUnavailable (retry later)."""
    # Jobs run from their stored JSON arguments may hand ids over as strings.
    org_id, connection_id = UUID(str(org_id)), UUID(str(connection_id))
    cfg = _settings(settings)
    margin = cfg.integrations.refresh_margin_seconds
    ring = cfg.integrations.key_ring()
    # A statement (not session.get): it autoflushes the caller's pending changes before re-reading.
    row = await session.scalar(
        select(IntegrationConnection)
        .where(IntegrationConnection.id == connection_id)
        .execution_options(populate_existing=True)
    )
    if row is None or row.org_id != org_id:
        raise NeedsReconnect(connection_id, "missing")
    if row.status != "active":
        raise NeedsReconnect(connection_id, row.status)
    if not force_refresh and _fresh(row, datetime.now(UTC), margin):
        assert row.access_token_sealed is not None
        return ring.unseal(row.access_token_sealed, aad=access_aad(org_id, connection_id))
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        from spotless.lib.jobs.runtime import get_runtime

        engine = get_runtime().engine
    stale = row.access_token_sealed if force_refresh else None
    return await _refresh(engine, cfg, ring, org_id, connection_id, margin=margin, stale=stale)


async def _refresh(
    engine: AsyncEngine,
    cfg: Settings,
    ring: KeyRing,
    org_id: UUID,
    connection_id: UUID,
    *,
    margin: int,
    stale: str | None,
) -> str:
    reconnect: NeedsReconnect | None = None
    async with session_factory(engine)() as own:
        bind_org(own, org_id)
        try:
            async with own.begin():
                await own.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                row = await own.scalar(
                    select(IntegrationConnection)
                    .where(IntegrationConnection.id == connection_id)
                    .with_for_update(key_share=True)
                    .execution_options(populate_existing=True)
                )
                if row is None:
                    raise NeedsReconnect(connection_id, "missing")
                if row.status != "active":
                    raise NeedsReconnect(connection_id, row.status)
                now = datetime.now(UTC)
                # Another worker refreshed while we waited for the lock (and, when forced, replaced
                # the token the provider refused).
                if _fresh(row, now, margin) and (stale is None or row.access_token_sealed != stale):
                    assert row.access_token_sealed is not None
                    return ring.unseal(row.access_token_sealed, aad=access_aad(org_id, connection_id))
                assert row.refresh_token_sealed is not None  # a live row has one (tokens_match_status)
                current = ring.unseal(row.refresh_token_sealed, aad=refresh_aad(org_id, connection_id))
                try:
                    answer = await token_endpoint.refresh(
                        provider(cfg.integrations, row.provider),
                        refresh_token=current,
                        timeout_seconds=cfg.integrations.oauth_timeout_seconds,
                    )
                except token_endpoint.GrantRefused:
                    _mark_needs_reconnect(own, row, now)
                    reconnect = NeedsReconnect(connection_id, "needs_reconnect")
                else:
                    store_tokens(row, ring, answer, now, previous_refresh=current)
                    logger.info("refreshed the %s token of connection %s", row.provider, connection_id)
                    return answer.access_token
        except DBAPIError as exc:
            if "lock timeout" in str(exc.orig).lower() or "lock_not_available" in str(exc.orig).lower():
                raise ProviderUnavailable(f"connection {connection_id} is locked by another transaction") from None
            raise
    assert reconnect is not None
    logger.warning("connection %s: the provider refused its grant; it needs reconnecting", connection_id)
    raise reconnect


def store_tokens(
    row: IntegrationConnection,
    ring: KeyRing,
    answer: token_endpoint.TokenAnswer,
    now: datetime,
    *,
    previous_refresh: str | None,
) -> None:
    """A token answer onto its row, sealed with the primary key (a rotation reseals as it goes).
    A refresh answer without a refresh token keeps the one we have (Google does not rotate)."""
    refresh_token = answer.refresh_token or previous_refresh
    assert refresh_token is not None, "a connection needs a refresh token"
    row.access_token_sealed = ring.seal(answer.access_token, aad=access_aad(row.org_id, row.id))
    row.refresh_token_sealed = ring.seal(refresh_token, aad=refresh_aad(row.org_id, row.id))
    row.access_expires_at = now + timedelta(seconds=max(answer.expires_in, 0))
    if answer.scope:
        row.scopes = answer.scope
    row.last_refreshed_at = now
    row.last_error = None


def _mark_needs_reconnect(session: AsyncSession, row: IntegrationConnection, now: datetime) -> None:
    row.status = "needs_reconnect"
    row.status_changed_at = now
    row.last_error = "invalid_grant: the provider refused the grant (revoked or expired); connect again"
    # The grant is dead: what we kept of it is worthless, but the row keeps its (sealed) refresh
    # token so the tokens_match_status rule reads "live connection"; a reconnect replaces both.
    emit(
        session,
        IntegrationNeedsReconnect(
            org_id=row.org_id,
            connection_id=row.id,
            provider=row.provider,
            owner_user_id=row.owner_user_id,
            external_id=row.external_id,
            marked_at=now,
        ),
    )
