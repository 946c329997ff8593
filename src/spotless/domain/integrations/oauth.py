"""Connecting and disconnecting: the OAuth 2.0 authorization-code flow (RFC 6749 §4.1) with a
`state` bound to the signed-in member and used once, and PKCE S256 (RFC 7636) where the provider
supports it (Google).

- connect: a random state (only its SHA-256 is stored), the member who asked, whose connection it
  will be, and the PKCE verifier (sealed) -> the provider's authorization URL. Never the
  organisation's id in the state: a state means nothing without its row, which RLS scopes.
- callback: the admin page posts the code and state the provider redirected with. The state must
  be this organisation's (RLS), this member's, of this provider, unused and unexpired; it is
  marked used before the code is exchanged, and stays used even when the exchange fails.
- disconnect: the provider is asked to revoke the grant (best effort), the tokens are wiped and
  IntegrationDisconnected is emitted in the same transaction.

Who may: an organisation-wide connection (QuickBooks, a shared Google calendar) needs
`integrations.manage` (owners, admins); any member, a cleaner included, may connect and
disconnect their own Google calendar, and only their own."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.db.unit_of_work import commit_despite_error
from spotless.domain.identity.public import Principal
from spotless.domain.integrations import token_endpoint
from spotless.domain.integrations.errors import ProviderRefused, ProviderUnavailable
from spotless.domain.integrations.events import IntegrationDisconnected
from spotless.domain.integrations.models import IntegrationConnection, OAuthState
from spotless.domain.integrations.providers import PROVIDER_NAMES, Provider, provider
from spotless.domain.integrations.revocation import revoke_grant
from spotless.domain.integrations.schemas import Owner
from spotless.domain.integrations.tokens import store_tokens
from spotless.lib.errors import FieldError, Problem
from spotless.lib.events import emit
from spotless.lib.sealed import KeyRing
from spotless.settings import Settings

logger = logging.getLogger("spotless.integrations.oauth")

MANAGE = "integrations.manage"
# Expired states are kept this long (a late callback is answered "expired", not "unknown").
STATE_KEEP = timedelta(days=1)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _verifier_aad(org_id: UUID, state_id: UUID) -> str:
    return f"{org_id}:{state_id}:pkce"


def configured_provider(settings: Settings, name: str) -> Provider:
    if name not in PROVIDER_NAMES:
        raise Problem(404, "not-found", "Not found", f"There is no integration named {name!r}.")
    found = provider(settings.integrations, name)
    if not found.configured:
        raise Problem(
            409,
            "integration-not-configured",
            "Integration not configured",
            f"{name} is not set up on this server ({name.upper()}_OAUTH_CLIENT_ID / _SECRET).",
        )
    return found


def _forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def owner_of(principal: Principal, found: Provider, owner: Owner | None) -> UUID | None:
    """Whose connection the caller may act on: their own (None -> organisation-wide). Refuses
    what their role does not allow."""
    owner = owner or ("me" if found.per_user else "organization")
    if owner == "me":
        if not found.per_user:
            raise FieldError("owner", f"{found.name} connects the organisation, not a member: use 'organization'")
        return principal.user_id
    if not principal.can(MANAGE):
        raise _forbidden("Organisation-wide integrations are managed by owners and admins (integrations.manage).")
    return None


async def start_connect(
    session: AsyncSession, principal: Principal, settings: Settings, name: str, owner: Owner | None
) -> tuple[str, datetime]:
    found = configured_provider(settings, name)
    owner_user_id = owner_of(principal, found, owner)
    ring = settings.integrations.key_ring()
    now = datetime.now(UTC)
    state = secrets.token_urlsafe(32)
    row = OAuthState(
        id=UUID(str(uuid7())),
        org_id=principal.org_id,
        user_id=principal.user_id,
        provider=found.name,
        for_user=owner_user_id is not None,
        state_hash=state_hash(state),
        redirect_uri=found.redirect_uri,
        expires_at=now + timedelta(seconds=settings.integrations.oauth_state_ttl_seconds),
    )
    params = {
        "response_type": "code",
        "client_id": found.client_id,
        "redirect_uri": found.redirect_uri,
        "scope": " ".join(found.scopes),
        "state": state,
    }
    if found.pkce:
        verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-] (RFC 7636: 43-128)
        row.code_verifier_sealed = ring.seal(verifier, aad=_verifier_aad(row.org_id, row.id))
        params |= {"code_challenge": _pkce_challenge(verifier), "code_challenge_method": "S256"}
    params |= dict(found.extra_authorize_params)
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < now - STATE_KEEP))
    session.add(row)
    return f"{found.authorize_url}?{urlencode(params)}", row.expires_at


def _bad_state(detail: str) -> Problem:
    return Problem(400, "invalid-oauth-state", "This connect link is not valid", detail)


async def _consume_state(session: AsyncSession, principal: Principal, name: str, state: str) -> OAuthState:
    row = await session.scalar(select(OAuthState).where(OAuthState.state_hash == state_hash(state)).with_for_update())
    # Another organisation's state is invisible here (RLS): the same answer as an unknown one.
    if row is None or row.provider != name:
        raise _bad_state("Unknown state: start the connection again.")
    if row.user_id != principal.user_id:
        raise _bad_state("This connection was started by someone else: start it again yourself.")
    if row.used_at is not None:
        raise _bad_state("This connect link was already used: start the connection again.")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise _bad_state("This connect link has expired: start the connection again.")
    row.used_at = now
    await session.flush()
    # The state is spent whatever the exchange answers: a replayed callback is refused.
    commit_despite_error(session)
    return row


def _account_email(answer: token_endpoint.TokenAnswer) -> str | None:
    """The Google account's email from the ID token. It came straight from the token endpoint
    over TLS, so its signature need not be checked (OpenID Connect Core §3.1.3.7)."""
    if not answer.id_token or answer.id_token.count(".") != 2:
        return None
    payload = answer.id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return str(email)[:255] if email else None


async def complete_callback(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    name: str,
    *,
    code: str,
    state: str,
    realm_id: str | None,
) -> IntegrationConnection:
    found = configured_provider(settings, name)
    if found.name == "quickbooks" and not realm_id:
        raise FieldError("realm_id", "QuickBooks' redirect carries realmId: post it as realm_id", "required")
    pending = await _consume_state(session, principal, found.name, state)
    owner_user_id = principal.user_id if pending.for_user else None
    if owner_user_id is None and not principal.can(MANAGE):
        raise _forbidden("Organisation-wide integrations are managed by owners and admins (integrations.manage).")
    ring = settings.integrations.key_ring()
    verifier = (
        ring.unseal(pending.code_verifier_sealed, aad=_verifier_aad(pending.org_id, pending.id))
        if pending.code_verifier_sealed
        else None
    )
    try:
        answer = await token_endpoint.exchange_code(
            found,
            code=code,
            redirect_uri=pending.redirect_uri,
            code_verifier=verifier,
            timeout_seconds=settings.integrations.oauth_timeout_seconds,
        )
    except token_endpoint.GrantRefused:
        raise Problem(
            400, "oauth-code-rejected", "The provider refused the code", "Start the connection again."
        ) from None
    except ProviderUnavailable:
        raise Problem(
            503, "integration-provider-unavailable", "The provider is not answering", "Try again in a minute."
        ) from None
    except ProviderRefused as exc:
        logger.error("%s", exc)
        raise Problem(503, "integration-provider-refused", "The provider refused our client", str(exc)) from None
    if not answer.refresh_token:
        raise Problem(503, "integration-provider-refused", "No refresh token", "The provider sent no refresh token.")
    missing = sorted(set(found.required_scopes) - set((answer.scope or " ".join(found.scopes)).split()))
    if missing:
        # Nothing is stored for it: give the half grant back now, best effort.
        try:
            await token_endpoint.revoke(
                found, token=answer.refresh_token, timeout_seconds=settings.integrations.oauth_timeout_seconds
            )
        except ProviderUnavailable:
            logger.warning("%s revoke endpoint unreachable; the partial grant stays until it expires", found.name)
        raise Problem(
            400,
            "integration-scope-missing",
            "Some permissions were not granted",
            f"Connect again and allow every permission asked for; missing: {', '.join(missing)}.",
        )
    external_id = realm_id if found.name == "quickbooks" else _account_email(answer)
    return await _store_connection(session, ring, settings, principal, found, owner_user_id, external_id, answer)


async def _live(session: AsyncSession, name: str, owner_user_id: UUID | None) -> IntegrationConnection | None:
    owner = (
        IntegrationConnection.owner_user_id.is_(None)
        if owner_user_id is None
        else IntegrationConnection.owner_user_id == owner_user_id
    )
    return await session.scalar(
        select(IntegrationConnection)
        .where(IntegrationConnection.provider == name, owner, IntegrationConnection.status != "disconnected")
        .with_for_update()
    )


async def _store_connection(
    session: AsyncSession,
    ring: KeyRing,
    settings: Settings,
    principal: Principal,
    found: Provider,
    owner_user_id: UUID | None,
    external_id: str | None,
    answer: token_endpoint.TokenAnswer,
) -> IntegrationConnection:
    """Reconnecting the same account/company revives its row (a needs-reconnect one included), so
    what the sync keeps per connection stays valid; another account or company replaces it."""
    now = datetime.now(UTC)
    # Two callbacks for the same owner at once (two tabs): the second waits for the first's commit,
    # then finds its connection and refreshes it, instead of failing on the one-live-connection index.
    key = f"integration:{principal.org_id}:{found.name}:{owner_user_id or 'organization'}"
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
    row = await _live(session, found.name, owner_user_id)
    if row is not None and None not in (row.external_id, external_id) and row.external_id != external_id:
        await _wipe(session, ring, settings, found, row, now)
        await session.flush()
        row = None
    if row is None:
        row = IntegrationConnection(
            id=UUID(str(uuid7())),
            org_id=principal.org_id,
            provider=found.name,
            owner_user_id=owner_user_id,
            status="active",
            status_changed_at=now,
            error_count=0,
        )
        session.add(row)
    elif row.status != "active":
        row.status, row.status_changed_at = "active", now
    row.external_id = external_id
    row.connected_by_user_id = principal.user_id
    row.scopes = answer.scope or " ".join(found.scopes)
    row.next_sync_at = None  # due at the next poll
    row.error_count = 0
    store_tokens(row, ring, answer, now, previous_refresh=None)
    await session.flush()
    logger.info("connected %s for org %s (connection %s)", found.name, principal.org_id, row.id)
    return row


async def _wipe(
    session: AsyncSession, ring: KeyRing, settings: Settings, found: Provider, row: IntegrationConnection, now: datetime
) -> None:
    # The grant is revoked by a job queued in this transaction: a disconnect that rolls back
    # revokes nothing, and one that commits revokes even if the provider is down right now. The
    # job carries the refresh token still sealed (never plain in the outbox or in Redis).
    if row.refresh_token_sealed:
        revoke_grant.enqueue(session, row.org_id, row.id, found.name, row.refresh_token_sealed)
    row.status, row.status_changed_at = "disconnected", now
    row.access_token_sealed = row.refresh_token_sealed = None
    row.access_expires_at = row.next_sync_at = None
    row.last_error = None
    emit(
        session,
        IntegrationDisconnected(
            org_id=row.org_id, connection_id=row.id, provider=row.provider, owner_user_id=row.owner_user_id
        ),
    )


async def disconnect(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    name: str,
    owner: Owner | None,
    user_id: UUID | None,
) -> None:
    if name not in PROVIDER_NAMES:
        raise Problem(404, "not-found", "Not found", f"There is no integration named {name!r}.")
    found = provider(settings.integrations, name)
    if user_id is not None and user_id != principal.user_id:
        # A member's own calendar, disconnected by the office (someone leaving).
        if not principal.can(MANAGE) or not found.per_user:
            raise _forbidden("Only owners and admins disconnect another member's calendar.")
        target: UUID | None = user_id
    else:
        target = principal.user_id if user_id is not None else owner_of(principal, found, owner)
    row = await _live(session, found.name, target)
    if row is None:
        raise Problem(404, "not-found", "Not found", f"There is no {name} connection to disconnect.")
    await _wipe(session, settings.integrations.key_ring(), settings, found, row, datetime.now(UTC))


async def visible_connections(session: AsyncSession, principal: Principal) -> list[IntegrationConnection]:
    """Owners and admins see the organisation's live connections; everyone else their own."""
    stmt = select(IntegrationConnection).where(IntegrationConnection.status != "disconnected")
    if not principal.can(MANAGE):
        stmt = stmt.where(IntegrationConnection.owner_user_id == principal.user_id)
    return list(await session.scalars(stmt.order_by(IntegrationConnection.provider, IntegrationConnection.created_at)))
