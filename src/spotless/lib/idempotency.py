"""`Idempotency-Key` for POSTs: the first request with a key runs, later ones with the same key and
body get the stored response; a different body is a 409, a key still being worked on is a 409
with Retry-After.

Use it from a handler (it needs the request's session, so it is a helper rather than middleware):

    @post("/things", opt={"permission": "things.edit"})
    async def create(self, request: Request, db_session: AsyncSession, principal: Principal,
                     data: NewThing) -> Response[Thing]:
        return await idempotent(request, db_session, principal,
                                lambda: service.create(db_session, principal, data), status_code=201)

How it holds:
- the key is claimed (row `in_flight`, generation N) in its own short transaction, so a concurrent
  retry sees it at once instead of blocking on the request's transaction;
- the response is recorded in the request's own transaction, which the unit of work commits with
  the request's work: the effect and its recorded response are durable together, or neither is;
- the claim is fenced: a claim left behind (a crashed process, or a request slower than
  `IN_FLIGHT_LEASE_SECONDS`) is taken over by bumping its generation. The slow first request then
  finds the fence moved when it records its response and is refused (409, its work rolled back),
  so the work is done once; and its late release cannot delete the new owner's claim;
- if the request fails or its commit does, the claim is released so the client can retry;
- a route may name `secret_fields` (a temporary password): the recorded body has them nulled, so the
  secret never rests in the table, and a replay answers them as null with an
  `Idempotent-Withheld` header naming them (the secret was shown once, to the first response).
Keys are scoped to (organisation, user): two people cannot replay each other's responses.
Stored responses are kept `RETENTION_HOURS` (purged hourly by the `identity.purge_expired` job).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
from advanced_alchemy.types import GUID
from litestar import Request, Response
from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, String, UniqueConstraint, column, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from spotless.db.base import TenantMixin, UUIDv7AuditBase
from spotless.db.dialect import defer_scope
from spotless.db.unit_of_work import after_rollback
from spotless.lib.errors import FieldError, Problem
from spotless.lib.sql import Compiled

logger = logging.getLogger("spotless.idempotency")

HEADER = "Idempotency-Key"
IN_FLIGHT_LEASE_SECONDS = 60
RETENTION_HOURS = 24
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKey(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", "key", name="uq_idempotency_keys_org_user_key"),
        CheckConstraint("status IN ('in_flight', 'done')", name="status_known"),
    )

    user_id: Mapped[UUID] = mapped_column(GUID())
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="in_flight")
    locked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # Bumped when an expired claim is taken over; completing or releasing needs the generation held.
    claim_generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class _Caller(Protocol):
    @property
    def org_id(self) -> UUID: ...

    @property
    def user_id(self) -> UUID: ...


_SET_ORG = text("SELECT set_config('app.org_id', :org, true)")
_CLAIM = text(
    """
    INSERT INTO idempotency_keys (id, org_id, user_id, key, method, path, request_hash, status, locked_at,
                                  created_at, updated_at)
    VALUES (:id, :org, :user, :key, :method, :path, :hash, 'in_flight', now(), now(), now())
    ON CONFLICT ON CONSTRAINT uq_idempotency_keys_org_user_key DO NOTHING
    RETURNING id, claim_generation
    """
)
_EXISTING = text(
    """
    SELECT id, request_hash, status, response_status, response_body
    FROM idempotency_keys WHERE org_id = :org AND user_id = :user AND key = :key
    """
)
_TAKE_OVER = text(
    """
    UPDATE idempotency_keys SET locked_at = now(), updated_at = now(), claim_generation = claim_generation + 1
    WHERE id = :id AND status = 'in_flight' AND locked_at < now() - make_interval(secs => :lease)
    RETURNING id, claim_generation
    """
)
_RELEASE = text("DELETE FROM idempotency_keys WHERE id = :id AND status = 'in_flight' AND claim_generation = :gen")
# In the request's transaction, through asyncpg (lib.sql): no flush of the request's pending rows
# is needed for it, and the commit writes those anyway.
_COMPLETE = Compiled(
    text(
        """
    UPDATE idempotency_keys SET status = 'done', response_status = :status, response_body = :body,
           updated_at = now()
    WHERE id = :id AND status = 'in_flight' AND claim_generation = :gen
    RETURNING id
    """
    ).columns(column("id"))
)
REPLAYED_HEADER = "Idempotent-Replayed"
WITHHELD_HEADER = "Idempotent-Withheld"


@dataclass(frozen=True)
class _Claim:
    id: UUID
    generation: int


def _engine(request: Request[Any, Any, Any]) -> AsyncEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def _in_flight() -> Problem:
    return Problem(
        409,
        "idempotency-key-in-flight",
        "A request with this key is still being processed",
        "Retry after a moment: the first request with this Idempotency-Key has not finished.",
        headers={"Retry-After": "1"},
    )


def _mismatch() -> Problem:
    return Problem(
        409,
        "idempotency-key-mismatch",
        "Idempotency-Key reused with a different request",
        "This Idempotency-Key was used for a different request body or endpoint; use a new key.",
    )


def _superseded() -> Problem:
    return Problem(
        409,
        "idempotency-key-superseded",
        "This request took too long and was superseded",
        "A retry with this Idempotency-Key took the request over after its lease expired; this attempt "
        "was not applied. Retry to get the outcome.",
        headers={"Retry-After": "1"},
    )


def _replay(row: Any, secret_fields: tuple[str, ...]) -> Response[Any]:
    headers = {REPLAYED_HEADER: "true"}
    if secret_fields:
        headers[WITHHELD_HEADER] = ", ".join(secret_fields)
    return Response(
        content=row.response_body or b"",
        status_code=row.response_status or 200,
        media_type="application/json",
        headers=headers,
    )


async def _scope(conn: AsyncConnection, org_id: UUID) -> None:
    """The claim's own transaction, scoped to the organisation: the scope rides with its BEGIN
    (db/dialect.py), no round trip of its own, unless BEGIN has gone already."""
    if not defer_scope(conn.sync_connection, org_id):
        await conn.execute(_SET_ORG, {"org": str(org_id)})


async def _claim(
    engine: AsyncEngine,
    caller: _Caller,
    key: str,
    method: str,
    path: str,
    digest: str,
    secret_fields: tuple[str, ...],
) -> _Claim | Response[Any]:
    async with engine.begin() as conn:
        await _scope(conn, caller.org_id)
        claimed = (
            await conn.execute(
                _CLAIM,
                {
                    "id": uuid7(),
                    "org": caller.org_id,
                    "user": caller.user_id,
                    "key": key,
                    "method": method,
                    "path": path,
                    "hash": digest,
                },
            )
        ).one_or_none()
        if claimed is not None:
            return _Claim(claimed.id, claimed.claim_generation)
        row = (await conn.execute(_EXISTING, {"org": caller.org_id, "user": caller.user_id, "key": key})).one_or_none()
        if row is None:  # released between our insert and select: treat as in flight, the client retries
            raise _in_flight()
        if row.request_hash != digest:
            raise _mismatch()
        if row.status == "done":
            return _replay(row, secret_fields)
        taken = (await conn.execute(_TAKE_OVER, {"id": row.id, "lease": IN_FLIGHT_LEASE_SECONDS})).one_or_none()
        if taken is None:
            raise _in_flight()
        return _Claim(taken.id, taken.claim_generation)


async def _release(engine: AsyncEngine, org_id: UUID, claim: _Claim) -> None:
    """After the request's transaction rolled back: free the key, unless someone else holds it now."""
    try:
        async with engine.begin() as conn:
            await _scope(conn, org_id)
            await conn.execute(_RELEASE, {"id": claim.id, "gen": claim.generation})
    except Exception:
        # The claim then expires with its lease; the client's retry waits that long at worst.
        logger.warning("could not release an idempotency claim", exc_info=True)


def _without_secrets(result: Any, body: bytes, secret_fields: tuple[str, ...]) -> bytes:
    if not secret_fields:
        return body
    plain = msgspec.to_builtins(result)
    if isinstance(plain, dict):
        for name in secret_fields:
            if name in plain:
                plain[name] = None
    return msgspec.json.encode(plain)


async def idempotent(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    caller: _Caller,
    produce: Callable[[], Awaitable[Any]],
    *,
    status_code: int = 200,
    required: bool = False,
    secret_fields: tuple[str, ...] = (),
) -> Response[Any]:
    """Run `produce` at most once per Idempotency-Key; its result (a msgspec Struct or any JSON-able
    value) is the response body. Without the header it simply runs (or 400 when `required`).
    `secret_fields` are top-level fields shown to the first response only (never recorded)."""
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise FieldError(HEADER, "An Idempotency-Key header is required for this request.")
        return Response(content=await produce(), status_code=status_code)
    if not _VALID_KEY.match(key):
        raise FieldError(HEADER, "Idempotency-Key must be 1 to 255 visible ASCII characters.")
    method, path = request.method, request.url.path
    digest = request_hash(method, path, await request.body())
    engine = _engine(request)
    claimed = await _claim(engine, caller, key, method, path, digest, secret_fields)
    if isinstance(claimed, Response):
        return claimed
    # Whatever ends the request's transaction without a commit (an error, a failed commit) frees the key.
    after_rollback(db_session, _release, engine, caller.org_id, claimed)
    result = await produce()
    body = msgspec.json.encode(result)
    recorded = _without_secrets(result, body, secret_fields)
    completed = await _COMPLETE.rows(
        db_session, {"id": claimed.id, "gen": claimed.generation, "status": status_code, "body": recorded}
    )
    if not completed:
        raise _superseded()
    return Response(content=body, status_code=status_code, media_type="application/json")
