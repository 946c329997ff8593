"""Sign-up, sign-in, refresh, sign-out, password change and reset.

Before authentication there is no organisation to scope to; look-ups by email go through the
SECURITY DEFINER function `auth_login_candidates` and, once the organisation is known, the
transaction is scoped to it (`apply_org_now`) like any authenticated request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.db.engine import apply_org_now
from spotless.db.unit_of_work import after_commit, commit_despite_error
from spotless.domain.audit.public import record_audit
from spotless.domain.identity import passwords, validation
from spotless.domain.identity.authn import IdentityRuntime
from spotless.domain.identity.invitations import join_by_first_sign_in
from spotless.domain.identity.messages import PASSWORD_RESET
from spotless.domain.identity.metrics import LOGIN_ATTEMPTS, REFRESH_REUSE
from spotless.domain.identity.models import AuthSession, Membership, Organization, PasswordResetToken, User
from spotless.domain.identity.permissions import permissions_for
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.public import OrgProfile
from spotless.domain.identity.schemas import AuthResult, Login, Me, OrgSummary, Signup, TokenPair, UserInfo
from spotless.domain.identity.session_cache import SessionState
from spotless.domain.identity.sessions import (
    IssuedTokens,
    RefreshReuse,
    act_as_user,
    invalid_refresh,
    open_session,
    revoke_everywhere,
    revoke_sessions,
    rotate,
    session_changed,
)
from spotless.domain.identity.throttle import normalise_email
from spotless.domain.identity.tokens import compose, hash_secret, new_secret, split
from spotless.domain.messaging.public import Recipient, request_message
from spotless.lib.errors import FieldError, Problem
from spotless.settings import Settings

logger = logging.getLogger("spotless.identity")


_CANDIDATES = text("SELECT * FROM auth_login_candidates(:email)")


@dataclass(frozen=True)
class Client:
    """Where a pre-authentication request comes from (for throttling, sessions and audit)."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class _Actor:
    user_id: UUID
    org_id: UUID
    email: str
    role: str


def invalid_credentials() -> Problem:
    return Problem(401, "invalid-credentials", "Invalid credentials", "The email or password is incorrect.")


async def login_candidates(db: AsyncSession, email: str) -> list[Any]:
    return list((await db.execute(_CANDIDATES, {"email": normalise_email(email)})).all())


async def _remember(rt: IdentityRuntime, tokens: IssuedTokens, user: User, role: str) -> None:
    await rt.checker.remember(
        SessionState(
            tokens.session.id,
            usable=True,
            role=role,
            password_change_required=user.must_change_password,
            expires_at=tokens.session.expires_at,
        )
    )


def _auth_result(tokens: IssuedTokens, user: User, org: Organization, role: str) -> AuthResult:
    return AuthResult(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type="bearer",
        expires_in=tokens.expires_in,
        access_token_expires_at=tokens.access_expires_at,
        user=UserInfo.from_model(user),
        organization=OrgSummary.from_model(org),
        role=role,
        permissions=sorted(permissions_for(role)),
    )


# --- sign-up ----------------------------------------------------------------------------------


async def signup(db: AsyncSession, rt: IdentityRuntime, data: Signup, client: Client) -> AuthResult:
    """Creates the organisation and its owner in one transaction. An email that already has an
    account may create another organisation by proving its password."""
    settings = rt.settings
    tz = validation.timezone(data.timezone)
    currency = validation.currency(data.currency)
    locale = validation.locale(data.locale)
    requested_slug = validation.slug(data.slug) if data.slug is not None else None
    email = normalise_email(data.email)

    rows = await login_candidates(db, email)
    if rows:
        await rt.login_throttle.attempt(email, client.ip)
        if not await passwords.verify_password(settings.auth, rows[0].password_hash, data.password):
            raise Problem(
                409,
                "email-taken",
                "An account with this email exists",
                "Sign in, or sign up with that account's password to add an organisation to it.",
            )
        await rt.login_throttle.succeeded(email, client.ip)
        user_id: UUID = rows[0].user_id
        password_hash = None
    else:
        passwords.enforce_policy(settings.auth, data.password, email=email)
        user_id = uuid7()
        password_hash = await passwords.hash_password(settings.auth, data.password)

    org_id = uuid7()
    await apply_org_now(db, org_id)
    await act_as_user(db, user_id)
    org = await _insert_org(
        db,
        org_id,
        data.org_name.strip(),
        requested_slug,
        tz,
        currency,
        locale,
    )
    if password_hash is not None:
        user = User(
            id=user_id,
            email=email,
            full_name=data.full_name.strip(),
            password_hash=password_hash,
            must_change_password=False,
            password_changed_at=datetime.now(UTC),
        )
        db.add(user)
        try:
            await db.flush()
        except SAIntegrityError:
            # Same email signed up concurrently: the first one won.
            raise Problem(409, "email-taken", "An account with this email exists", "Sign in instead.") from None
    else:
        user = (await db.execute(select(User).where(User.id == user_id))).scalar_one()
    db.add(
        Membership(
            id=uuid7(),
            org_id=org_id,
            user_id=user_id,
            role="owner",
            is_active=True,
            display_name=data.full_name.strip(),
        )
    )
    await db.flush()
    record_audit(
        db,
        _Actor(user_id=user_id, org_id=org_id, email=user.email, role="owner"),
        "organization.create",
        "organization",
        org_id,
        after={"name": org.name, "slug": org.slug, "timezone": tz, "currency": currency, "owner": email},
        client_ip=client.ip,
    )
    tokens = await open_session(
        db, settings, org_id=org_id, user_id=user_id, email=user.email, ip=client.ip, user_agent=client.user_agent
    )
    after_commit(db, _remember, rt, tokens, user, "owner")
    return _auth_result(tokens, user, org, "owner")


async def _insert_org(
    db: AsyncSession, org_id: UUID, name: str, requested_slug: str | None, tz: str, currency: str, locale: str
) -> Organization:
    base = requested_slug or validation.slugify(name)
    for attempt in range(6):
        slug = base if attempt == 0 else validation.with_suffix(base)
        org = Organization(
            id=org_id,
            name=name,
            slug=slug,
            timezone=tz,
            currency=currency,
            locale=locale,
            business_hours={},
            tax_rate_bps=0,
        )
        try:
            async with db.begin_nested():
                db.add(org)
                await db.flush()
            return org
        except SAIntegrityError as exc:
            if "uq_organization_slug" not in str(exc.orig):
                raise
            if requested_slug is not None:
                raise Problem(
                    409,
                    "slug-taken",
                    "This URL name is taken",
                    f"The slug '{slug}' is already used; choose another.",
                    errors=[{"field": "slug", "message": "already taken"}],
                ) from None
    raise Problem(409, "slug-taken", "This URL name is taken", "Choose a slug for the organisation.")


# --- sign-in -----------------------------------------------------------------------------------


async def login(db: AsyncSession, rt: IdentityRuntime, data: Login, client: Client) -> AuthResult:
    settings = rt.settings
    email = normalise_email(data.email)
    # Counted before the (slow) verification, atomically: parallel guesses cannot overtake the count.
    await rt.login_throttle.attempt(email, client.ip)
    rows = await login_candidates(db, email)
    stored = rows[0].password_hash if rows else None
    if not await passwords.verify_password(settings.auth, stored, data.password):
        LOGIN_ATTEMPTS.labels(outcome="failed").inc()
        raise invalid_credentials()
    if all(r.org_id is None for r in rows) and await join_by_first_sign_in(db, rows[0].user_id, email):
        # An account created by an invitation: this first sign-in accepted it.
        rows = await login_candidates(db, email)
    memberships = [r for r in rows if r.org_id is not None and r.member_active]
    if data.org_slug:
        chosen = [r for r in memberships if r.org_slug == data.org_slug.strip().lower()]
    elif len(memberships) > 1:
        raise Problem(
            400,
            "org-slug-required",
            "Choose an organisation",
            "This account belongs to several organisations; sign in again with org_slug.",
            errors=[{"field": "org_slug", "message": "required for this account"}],
            organizations=[{"slug": r.org_slug, "name": r.org_name} for r in memberships],
        )
    else:
        chosen = memberships
    if not chosen:
        # Right password but no (active) membership there: same answer as a wrong password.
        LOGIN_ATTEMPTS.labels(outcome="no_membership").inc()
        raise invalid_credentials()
    await rt.login_throttle.succeeded(email, client.ip)
    row = chosen[0]
    await apply_org_now(db, row.org_id)
    await act_as_user(db, row.user_id)
    # Lock the membership: a concurrent deactivation waits for this sign-in, then revokes its session.
    membership = (
        await db.execute(
            select(Membership)
            .where(Membership.org_id == row.org_id, Membership.user_id == row.user_id)
            .with_for_update(read=True)
        )
    ).scalar_one_or_none()
    if membership is None or not membership.is_active:
        raise invalid_credentials()
    user = (await db.execute(select(User).where(User.id == row.user_id))).scalar_one()
    org = (await db.execute(select(Organization).where(Organization.id == row.org_id))).scalar_one()
    user.last_login_at = datetime.now(UTC)
    if passwords.needs_rehash(settings.auth, user.password_hash):
        user.password_hash = await passwords.hash_password(settings.auth, data.password)
    tokens = await open_session(
        db, settings, org_id=org.id, user_id=user.id, email=user.email, ip=client.ip, user_agent=client.user_agent
    )
    after_commit(db, _remember, rt, tokens, user, membership.role)
    LOGIN_ATTEMPTS.labels(outcome="ok").inc()
    return _auth_result(tokens, user, org, membership.role)


async def refresh(db: AsyncSession, rt: IdentityRuntime, refresh_token: str) -> TokenPair:
    parts = split(refresh_token)
    if parts is None:
        raise invalid_refresh()
    org_id, secret = parts
    await apply_org_now(db, org_id)

    async def email_of(session: AuthSession) -> str | None:
        await act_as_user(db, session.user_id)
        row = (
            await db.execute(
                select(User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.org_id == org_id, Membership.user_id == session.user_id, Membership.is_active)
            )
        ).scalar_one_or_none()
        return row

    try:
        tokens = await rotate(db, rt.settings, org_id, secret, email_of)
    except RefreshReuse as reuse:
        REFRESH_REUSE.inc()
        await revoke_sessions(db, org_id, reuse.session.user_id, "refresh_reuse", session_id=reuse.session.id)
        commit_despite_error(db)  # the 401 below must not roll the revocation back
        logger.warning("refresh token reused; session revoked", extra={"session_id": str(reuse.session.id)})
        raise invalid_refresh("This refresh token was already used; the session has been revoked.") from None
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        access_token_expires_at=tokens.access_expires_at,
    )


async def logout(db: AsyncSession, rt: IdentityRuntime, principal: Principal) -> None:
    await revoke_sessions(db, principal.org_id, principal.user_id, "logout", session_id=principal.session_id)


async def me(db: AsyncSession, principal: Principal, org: OrgProfile) -> Me:
    user = (await db.execute(select(User).where(User.id == principal.user_id))).scalar_one()
    return Me(
        user=UserInfo.from_model(user),
        organization=OrgSummary.from_model(org),
        role=principal.role,
        permissions=sorted(principal.permissions),
        session_id=principal.session_id,
    )


# --- passwords ---------------------------------------------------------------------------------


async def change_password(
    db: AsyncSession, rt: IdentityRuntime, principal: Principal, current: str, new: str, client: Client
) -> None:
    settings = rt.settings
    await rt.login_throttle.attempt(principal.email, client.ip)
    await act_as_user(db, principal.user_id)  # a user's row is writable by that user alone
    user = (await db.execute(select(User).where(User.id == principal.user_id).with_for_update())).scalar_one()
    if not await passwords.verify_password(settings.auth, user.password_hash, current):
        raise Problem(
            400,
            "invalid-credentials",
            "Invalid credentials",
            "The current password is incorrect.",
            errors=[{"field": "current_password", "message": "incorrect"}],
        )
    await rt.login_throttle.succeeded(principal.email, client.ip)
    passwords.enforce_policy(settings.auth, new, email=user.email, field="new_password")
    if new == current:
        raise FieldError("new_password", "Choose a password different from the current one.")
    user.password_hash = await passwords.hash_password(settings.auth, new)
    user.must_change_password = False
    user.password_changed_at = datetime.now(UTC)
    await revoke_everywhere(db, user.id, "password_changed", keep=principal.session_id)
    # The current session stays, but its cached state (password change pending) must be refreshed.
    session_changed(db, principal.org_id, principal.user_id)
    record_audit(db, principal, "user.password_change", "user", user.id)


async def request_password_reset(db: AsyncSession, rt: IdentityRuntime, email_raw: str, client: Client) -> None:
    """Same answer whether or not the email exists; only a real account with an active membership
    gets an email (one without cannot sign in anywhere, so a new password would open nothing).

    The email is a `deliveries` row of the account's first active organisation (by slug, as
    sign-in lists them): a delivery belongs to an organisation (its log, suppressions, layout),
    and the account is that organisation's member. The link itself is minted by the delivery job
    (`mint_reset_link`): this transaction stores ids only."""
    email = normalise_email(email_raw)
    if await rt.reset_throttle.over_budget(email, client.ip):
        logger.info("password reset throttled")
        return
    rows = await login_candidates(db, email)
    active = [r for r in rows if r.org_id is not None and r.member_active]
    if not active:
        return
    user_id: UUID = rows[0].user_id
    await act_as_user(db, user_id)
    token = PasswordResetToken(
        id=uuid7(),
        user_id=user_id,
        token_hash=None,  # minted by the delivery job when it sends (only its hash is ever stored)
        requested_ip=client.ip,
        expires_at=datetime.now(UTC) + timedelta(minutes=rt.settings.auth.password_reset_ttl_minutes),
    )
    db.add(token)
    org_id: UUID = active[0].org_id
    await apply_org_now(db, org_id)
    await request_message(
        db,
        org_id=org_id,
        kind=PASSWORD_RESET.name,
        recipient=Recipient(kind="user", id=user_id),
        subject_type="password_reset",
        subject_id=token.id,
        send_key="request",
        params={"user_id": user_id, "reset_id": token.id},
    )


async def _open_reset(session: AsyncSession, params: Mapping[str, Any], *, lock: bool) -> PasswordResetToken | None:
    user_id = UUID(str(params["user_id"]))
    await act_as_user(session, user_id)
    query = select(PasswordResetToken).where(
        PasswordResetToken.id == UUID(str(params["reset_id"])), PasswordResetToken.user_id == user_id
    )
    row = (await session.scalars(query.with_for_update() if lock else query)).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    return row


async def reset_context(session: AsyncSession, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reset email's plain facts (None once the request is used or expired)."""
    row = await _open_reset(session, params, lock=False)
    if row is None:
        return None
    return {"minutes": max(1, int((row.expires_at - datetime.now(UTC)).total_seconds() // 60))}


async def mint_reset_link(
    session: AsyncSession, settings: Settings, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    """The delivery job's secrets hook for a reset email, at send time: a new link whose hash
    replaces the previous one, so a retried or redelivered email leaves only the latest link
    working. None once the request is used or expired."""
    row = await _open_reset(session, params, lock=True)
    if row is None:
        return None
    secret = new_secret()
    row.token_hash = hash_secret(secret)
    token = compose(row.user_id, secret)
    return {"reset_url": f"{settings.auth.password_reset_url}?{urlencode({'token': token})}"}


async def confirm_password_reset(db: AsyncSession, rt: IdentityRuntime, token: str, new_password: str) -> None:
    invalid = Problem(
        400,
        "invalid-reset-token",
        "This reset link is invalid or has expired",
        "Ask for a new password reset email.",
        errors=[{"field": "token", "message": "invalid or expired"}],
    )
    parts = split(token)
    if parts is None:
        raise invalid
    user_id, secret = parts
    await act_as_user(db, user_id)
    row = (
        await db.execute(
            select(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.token_hash == hash_secret(secret))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= datetime.now(UTC):
        raise invalid
    user = (await db.execute(select(User).where(User.id == user_id).with_for_update())).scalar_one()
    passwords.enforce_policy(rt.settings.auth, new_password, email=user.email, field="new_password")
    now = datetime.now(UTC)
    row.used_at = now
    # Any other outstanding link dies with this one.
    await db.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now, updated_at=now)
    )
    user.password_hash = await passwords.hash_password(rt.settings.auth, new_password)
    user.must_change_password = False
    user.password_changed_at = now
    await revoke_everywhere(db, user_id, "password_reset")
