"""The per-request session check: one Redis GET, Postgres only when Redis cannot answer.

Postgres (`auth_sessions`, `memberships`, `users`) is the truth; Redis holds, per session,
`{ns}:session:{sid}` = ``a|<role>|<1 if a password change is pending else 0>`` while it is
usable, or ``r`` once revoked. Every node reads the same key, so a revocation or a role change is
seen by all of them on the very next request.

- Hit: answered from Redis (no database work on the hot path). The same MGET reads the
  organisation's config version (db/org_cache.py), so its cached profile and settings are known
  fresh without a round trip of their own.
- Miss (expired key, flushed Redis): read Postgres, then fill with SET NX, so a slow filler can
  never overwrite a revocation written meanwhile.
- Redis error or timeout: read Postgres (failing closed would take the API down with Redis;
  failing open would accept revoked sessions). The first error opens the process' circuit
  breaker for that Redis (lib/circuit.py, shared with the limiter): later checks go to Postgres
  at once, without waiting for Redis' timeout, until the breaker's probe finds Redis back.
Writers (logout, deactivate, role change, password change) commit first and then publish the
truth read back from Postgres; they also enqueue `identity.sync_sessions` in the same
transaction, which republishes it if Redis was unreachable at that moment. As a last bound, an
"active" entry lives at most an hour before it is re-read from Postgres.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from spotless.db import org_cache
from spotless.domain.identity.metrics import SESSION_CHECKS
from spotless.lib.circuit import CircuitBreaker
from spotless.lib.redis import breaker_of
from spotless.lib.resp import Deadline, RespClient

logger = logging.getLogger("spotless.identity.sessions")

REVOKED = b"r"
# An "active" entry is re-read from Postgres at least this often: a bound on staleness even if a
# revocation's publication and its sync job were both lost.
ACTIVE_TTL_CAP_SECONDS = 3600
_WARN_EVERY_SECONDS = 10.0
_SET_ORG = text("SELECT set_config('app.org_id', :org, true)")
_STATE = text(
    """
    SELECT s.id, s.revoked_at IS NULL AND s.expires_at > now() AS live, s.expires_at,
           m.role, m.is_active AS member_active, u.must_change_password
    FROM auth_sessions s
    JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
    JOIN users u ON u.id = s.user_id
    WHERE s.org_id = :org AND {where}
    """
)


@dataclass(frozen=True, slots=True)
class SessionState:
    session_id: UUID
    usable: bool
    role: str = ""
    password_change_required: bool = False
    expires_at: datetime | None = None

    def encode(self) -> bytes:
        if not self.usable:
            return REVOKED
        return f"a|{self.role}|{1 if self.password_change_required else 0}".encode()


def session_key(namespace: str, session_id: UUID | str) -> str:
    return f"{namespace}:session:{session_id}"


def parse(session_id: UUID, raw: bytes | str) -> SessionState | None:
    if isinstance(raw, str):
        raw = raw.encode()
    if raw == REVOKED:
        return SessionState(session_id, usable=False)
    parts = raw.split(b"|")
    if len(parts) == 3 and parts[0] == b"a":
        return SessionState(session_id, usable=True, role=parts[1].decode(), password_change_required=parts[2] == b"1")
    return None  # unknown format (older deploy): treat as a miss


def _row_state(row: Any) -> SessionState:
    usable = bool(row.live and row.member_active)
    return SessionState(
        row.id,
        usable=usable,
        role=row.role if usable else "",
        password_change_required=bool(row.must_change_password),
        expires_at=row.expires_at,
    )


async def _read(
    conn: AsyncConnection | AsyncSession, org_id: UUID, where: str, params: dict[str, Any]
) -> list[SessionState]:
    await conn.execute(_SET_ORG, {"org": str(org_id)})
    rows = (await conn.execute(text(_STATE.text.format(where=where)), {"org": org_id, **params})).all()
    return [_row_state(r) for r in rows]


# One statement (migration 0010): scope and read together, as the app role, RLS applying.
_STATE_FUNCTION = (
    "SELECT session_id, live, expires_at, role, member_active, must_change_password FROM auth_session_state($1, $2, $3)"
)


async def _fetch_state(engine: AsyncEngine, org_id: UUID, user_id: UUID, session_id: UUID) -> Any:
    """One statement outside any transaction; a pooled connection found dead (no pre-ping) is
    dropped and the read made once more on a fresh one."""
    for attempt in (1, 2):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                # asyncpg itself, outside any transaction: the statement commits by itself.
                return await driver.fetchrow(_STATE_FUNCTION, org_id, session_id, user_id)
            except (asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError, OSError):
                if attempt == 2 or not driver.is_closed():
                    raise
                await conn.invalidate()
    raise AssertionError("unreachable")


async def read_state(engine: AsyncEngine, org_id: UUID, user_id: UUID, session_id: UUID) -> SessionState:
    """The session's truth from Postgres in one round trip: every request of a Redis outage comes
    here, so BEGIN/set_config/SELECT/COMMIT would be its cost."""
    try:
        row = await _fetch_state(engine, org_id, user_id, session_id)
    except asyncpg.UndefinedFunctionError:
        # Code rolled out before its migration: the same read in four round trips.
        async with engine.connect() as slow, slow.begin():
            states = await _read(
                slow, org_id, "s.id = :sid AND s.user_id = :user", {"sid": session_id, "user": user_id}
            )
        return states[0] if states else SessionState(session_id, usable=False)
    if row is None:
        return SessionState(session_id, usable=False)
    usable = bool(row["live"] and row["member_active"])
    return SessionState(
        row["session_id"],
        usable=usable,
        role=row["role"] if usable else "",
        password_change_required=bool(row["must_change_password"]),
        expires_at=row["expires_at"],
    )


def _ttl(state: SessionState, revoked_ttl: int) -> int:
    if state.usable and state.expires_at is not None:
        remaining = int((state.expires_at - datetime.now(UTC)).total_seconds())
        return max(1, min(remaining, ACTIVE_TTL_CAP_SECONDS))
    return revoked_ttl


class SessionChecker:
    """Used by the authentication middleware on every authenticated request."""

    def __init__(
        self,
        redis: Redis,
        engine: AsyncEngine,
        namespace: str,
        access_ttl_seconds: int,
        breaker: CircuitBreaker | None = None,
        *,
        fast: RespClient | None = None,
        timeout_seconds: float = 0.25,
    ) -> None:
        self.redis = redis
        # The per-request MGET goes through the request path's pipelined client (lib/resp.py: a
        # redis-py call costs ~0.3 ms of CPU, as much as the rest of a price quote); the rare
        # writes (fill, publish) stay on redis-py.
        self.fast = fast
        self.timeout_seconds = timeout_seconds
        self.breaker = breaker or breaker_of(redis)
        self.engine = engine
        self.namespace = namespace
        # Once every access token of a revoked session has expired, its marker may go.
        self.revoked_ttl = access_ttl_seconds + 60
        self._last_warning = -_WARN_EVERY_SECONDS

    def _warn_fallback(self) -> None:
        # Once per interval, not once per request: an outage must not also flood the logs.
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_SECONDS:
            self._last_warning = now
            logger.warning("session checks: Redis unavailable, reading Postgres", exc_info=True)

    async def check(self, org_id: UUID, user_id: UUID, session_id: UUID) -> SessionState:
        key = session_key(self.namespace, session_id)
        if not self.breaker.allow():
            org_cache.observe_unknown(org_id)
            SESSION_CHECKS.labels(source="postgres_fallback").inc()
            return await read_state(self.engine, org_id, user_id, session_id)
        try:
            raw, version = await self._mget(key, org_cache.version_key(self.namespace, org_id))
        except Exception as exc:
            self.breaker.failure(exc)
            org_cache.observe_unknown(org_id)
            SESSION_CHECKS.labels(source="postgres_fallback").inc()
            self._warn_fallback()
            return await read_state(self.engine, org_id, user_id, session_id)
        org_cache.observe(org_id, version)
        if raw is not None:
            state = parse(session_id, raw)
            if state is not None:
                SESSION_CHECKS.labels(source="redis").inc()
                return state
        SESSION_CHECKS.labels(source="postgres_miss").inc()
        state = await read_state(self.engine, org_id, user_id, session_id)
        try:
            await self.breaker.guard(
                lambda: self.redis.set(key, state.encode(), ex=_ttl(state, self.revoked_ttl), nx=True)
            )
        except Exception:
            logger.warning("session check: could not fill the Redis cache", exc_info=True)
        return state

    async def _mget(self, *keys: str) -> list[Any]:
        if self.fast is None:
            return await self.redis.mget(*keys)  # type: ignore[no-any-return]
        try:
            async with Deadline(self.timeout_seconds) as deadline:
                reply = await self.fast.call("MGET", *keys, sent=deadline.track)
        except TimeoutError:
            self.fast.reset()  # a hung server's socket is not reused
            raise
        if not isinstance(reply, list) or len(reply) != len(keys):
            raise ValueError(f"unexpected MGET reply {type(reply).__name__}")
        return reply

    async def org_config_changed(self, org_id: UUID) -> None:
        """Tell every node that this organisation's configuration changed (a new version value;
        nodes compare for equality). Kept a day: a node that finds no key re-reads once."""
        key = org_cache.version_key(self.namespace, org_id)
        try:
            await self.breaker.guard(lambda: self.redis.set(key, uuid.uuid4().hex, ex=86_400))
        except Exception:
            logger.warning(
                "could not publish an organisation's config version; other nodes see the change within %ss",
                org_cache.MAX_AGE_SECONDS,
                exc_info=True,
            )

    async def remember(self, state: SessionState) -> None:
        """Prime the cache for a session just opened, so its first request needs no database."""
        key = session_key(self.namespace, state.session_id)
        try:
            await self.breaker.guard(
                lambda: self.redis.set(key, state.encode(), ex=_ttl(state, self.revoked_ttl), nx=True)
            )
        except Exception:
            logger.warning("could not prime the session cache", exc_info=True)

    async def publish_member(self, org_id: UUID, user_id: UUID) -> int:
        """Copy the Postgres truth of one member's sessions to Redis (own connection, so the
        caller's transaction and its RLS scope are untouched). Raises if Redis is unreachable,
        at once while the breaker is open (the `identity.sync_sessions` job publishes later)."""
        async with self.engine.connect() as conn, conn.begin():
            states = await read_member_states(conn, org_id, user_id, self.revoked_ttl)
        return await self.breaker.guard(lambda: publish_states(self.redis, self.namespace, self.revoked_ttl, states))


_RECENT = (
    "s.user_id = :user AND (s.revoked_at IS NULL OR s.revoked_at > now() - make_interval(secs => :window))"
    " AND s.expires_at > now() - make_interval(secs => :window)"
)


async def read_member_states(
    conn: AsyncConnection | AsyncSession, org_id: UUID, user_id: UUID, window_seconds: int
) -> list[SessionState]:
    """Every session of one member that could still hold an unexpired access token."""
    return await _read(conn, org_id, _RECENT, {"user": user_id, "window": window_seconds})


async def publish_states(redis: Redis, namespace: str, revoked_ttl: int, states: list[SessionState]) -> int:
    if not states:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for state in states:
            pipe.set(session_key(namespace, state.session_id), state.encode(), ex=_ttl(state, revoked_ttl))
        await pipe.execute()
    return len(states)
