"""Server-side sessions: open one (tokens), revoke, and publish changes to every node.

A change that affects sessions (logout, deactivate, role, password) calls `session_changed` in
its transaction: that enqueues `identity.sync_sessions` (durable safety net) and, once the
request's unit of work has committed (and before the response is sent), writes the new truth to
Redis, so the very next request on any node sees it. A rollback publishes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.db.unit_of_work import collect_after_commit, pending_items
from spotless.domain.identity.actors import sync_sessions
from spotless.domain.identity.models import AuthSession, RefreshToken
from spotless.domain.identity.session_cache import SessionChecker
from spotless.domain.identity.tokens import compose, hash_secret, issue_access_token, new_secret
from spotless.lib.errors import Problem, register_constraint_problem
from spotless.settings import Settings

logger = logging.getLogger("spotless.identity.sessions")

# The request session's info carries the checker that publishes (set in app.py); sessions of
# jobs have none and rely on the queued identity.sync_sessions alone.
SESSION_PUBLISHER_INFO_KEY = "identity_session_publisher"
_SET_USER = text("SELECT set_config('app.user_id', :user, true)")


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    session: AuthSession

    @property
    def expires_in(self) -> int:
        return max(0, int((self.access_expires_at - datetime.now(UTC)).total_seconds()))


async def act_as_user(db: AsyncSession, user_id: UUID) -> None:
    """Let this transaction see (and write) one user's own rows: used before authentication
    (sign-in, reset) and when creating a user, whose row has no membership yet."""
    await db.execute(_SET_USER, {"user": str(user_id)})


def _new_refresh(settings: Settings, session: AuthSession, now: datetime) -> tuple[str, RefreshToken]:
    secret = new_secret()
    expires = min(now + timedelta(minutes=settings.auth.refresh_token_ttl_minutes), session.expires_at)
    row = RefreshToken(
        id=uuid7(), org_id=session.org_id, session_id=session.id, token_hash=hash_secret(secret), expires_at=expires
    )
    return compose(session.org_id, secret), row


async def open_session(
    db: AsyncSession,
    settings: Settings,
    *,
    org_id: UUID,
    user_id: UUID,
    email: str,
    ip: str | None,
    user_agent: str | None,
) -> IssuedTokens:
    now = datetime.now(UTC)
    session = AuthSession(
        id=uuid7(),
        org_id=org_id,
        user_id=user_id,
        expires_at=now + timedelta(minutes=settings.auth.session_ttl_minutes),
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    db.add(session)
    await db.flush()
    return await _issue(db, settings, session, email, now)


async def _issue(db: AsyncSession, settings: Settings, session: AuthSession, email: str, now: datetime) -> IssuedTokens:
    refresh, row = _new_refresh(settings, session, now)
    db.add(row)
    await db.flush()
    access, expires = issue_access_token(
        settings,
        user_id=session.user_id,
        org_id=session.org_id,
        session_id=session.id,
        email=email,
        session_expires_at=session.expires_at,
        now=now,
    )
    return IssuedTokens(access, refresh, expires, session)


def invalid_refresh(detail: str = "The refresh token is invalid or has expired.") -> Problem:
    return Problem(401, "invalid-refresh-token", "Sign in again", detail)


async def rotate(db: AsyncSession, settings: Settings, org_id: UUID, secret: str, email_of: Any) -> IssuedTokens:
    """Use a refresh token once: mark it used and issue the next pair. A second use of the same
    token revokes the session (the token leaked, or two clients share it): the caller keeps that
    revocation with `commit_despite_error` before answering 401."""
    now = datetime.now(UTC)
    token = (
        await db.execute(
            select(RefreshToken)
            .where(RefreshToken.org_id == org_id, RefreshToken.token_hash == hash_secret(secret))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if token is None:
        raise invalid_refresh()
    session = (
        await db.execute(
            select(AuthSession)
            .where(AuthSession.org_id == org_id, AuthSession.id == token.session_id)
            .with_for_update()
        )
    ).scalar_one()
    if token.used_at is not None:
        raise RefreshReuse(session)
    if session.revoked_at is not None or session.expires_at <= now or token.expires_at <= now:
        raise invalid_refresh()
    email = await email_of(session)
    if email is None:  # membership deactivated
        raise invalid_refresh()
    token.used_at = now
    return await _issue(db, settings, session, email, now)


class RefreshReuse(Exception):
    def __init__(self, session: AuthSession) -> None:
        self.session = session


async def revoke_sessions(
    db: AsyncSession, org_id: UUID, user_id: UUID, reason: str, *, session_id: UUID | None = None
) -> int:
    """Revoke one session or all of a member's sessions in this organisation."""
    statement = (
        update(AuthSession)
        .where(AuthSession.org_id == org_id, AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason, updated_at=datetime.now(UTC))
    )
    if session_id is not None:
        statement = statement.where(AuthSession.id == session_id)
    result = await db.execute(statement)
    session_changed(db, org_id, user_id)
    return result.rowcount or 0  # type: ignore[attr-defined]


async def revoke_everywhere(db: AsyncSession, user_id: UUID, reason: str, *, keep: UUID | None = None) -> int:
    """A password change ends the user's sessions in every organisation (SECURITY DEFINER
    function: the request is scoped to one organisation)."""
    rows = (
        await db.execute(
            text("SELECT session_id, org_id FROM auth_revoke_user_sessions(:user, :keep, :reason)"),
            {"user": user_id, "keep": keep, "reason": reason},
        )
    ).all()
    for org_id in {row.org_id for row in rows}:
        session_changed(db, org_id, user_id)
    return len(rows)


def session_changed(db: AsyncSession, org_id: UUID, user_id: UUID) -> None:
    if any(item[1:] == (org_id, user_id) for item in pending_items(db, _publish_after_commit)):
        return
    publisher: SessionChecker | None = db.sync_session.info.get(SESSION_PUBLISHER_INFO_KEY)
    collect_after_commit(db, _publish_after_commit, (publisher, org_id, user_id))
    sync_sessions.enqueue(db, org_id, user_id)


async def _publish_after_commit(changed: list[tuple[SessionChecker | None, UUID, UUID]]) -> None:
    """After commit, before the response: copy every changed member's sessions to Redis (the
    queued job repeats it if Redis cannot be reached now)."""
    for publisher, org_id, user_id in changed:
        if publisher is None:
            continue
        try:
            await publisher.publish_member(org_id, user_id)
        except Exception:
            logger.warning("session change not yet in Redis; identity.sync_sessions will publish it", exc_info=True)


def last_owner() -> Problem:
    return Problem(
        409,
        "last-owner",
        "The organisation needs an owner",
        "This is the last active owner of the organisation; make someone else owner first.",
    )


register_constraint_problem("memberships_last_owner", last_owner)
