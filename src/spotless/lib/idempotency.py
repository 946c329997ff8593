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
- the key is claimed (row `in_flight`) in its own short transaction, so a concurrent retry sees it
  at once instead of blocking on the request's transaction;
- the response is stored in the request's own transaction, which `idempotent` commits, so the
  effect and its recorded response are durable together;
- if the handler fails, the claim is released so the client can retry with the same key; a claim
  left behind by a crashed process is taken over after `IN_FLIGHT_LEASE_SECONDS`.
Keys are scoped to (organisation, user): two people cannot replay each other's responses.
Stored responses are kept `RETENTION_HOURS` (purged hourly by the `identity.purge_expired` job).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
from advanced_alchemy.types import GUID
from litestar import Request, Response
from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from spotless.db.base import TenantMixin, UUIDv7AuditBase
from spotless.lib.errors import FieldError, Problem

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
    RETURNING id
    """
)
_EXISTING = text(
    """
    SELECT id, request_hash, status, response_status, response_body,
           extract(epoch FROM now() - locked_at) AS age
    FROM idempotency_keys WHERE org_id = :org AND user_id = :user AND key = :key
    """
)
_TAKE_OVER = text(
    """
    UPDATE idempotency_keys SET locked_at = now(), updated_at = now()
    WHERE id = :id AND status = 'in_flight' AND locked_at < now() - make_interval(secs => :lease)
    RETURNING id
    """
)
_RELEASE = text("DELETE FROM idempotency_keys WHERE id = :id AND status = 'in_flight'")
_COMPLETE = text(
    """
    UPDATE idempotency_keys SET status = 'done', response_status = :status, response_body = :body,
           updated_at = now()
    WHERE id = :id
    """
)


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


async def _claim(
    engine: AsyncEngine, caller: _Caller, key: str, method: str, path: str, digest: str
) -> UUID | Response[Any]:
    async with engine.begin() as conn:
        await conn.execute(_SET_ORG, {"org": str(caller.org_id)})
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
        ).scalar()
        if claimed is not None:
            return claimed  # type: ignore[no-any-return]
        row = (await conn.execute(_EXISTING, {"org": caller.org_id, "user": caller.user_id, "key": key})).one_or_none()
        if row is None:  # released between our insert and select: treat as in flight, the client retries
            raise _in_flight()
        if row.request_hash != digest:
            raise _mismatch()
        if row.status == "done":
            return Response(
                content=row.response_body or b"",
                status_code=row.response_status or 200,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        taken = (await conn.execute(_TAKE_OVER, {"id": row.id, "lease": IN_FLIGHT_LEASE_SECONDS})).scalar()
        if taken is None:
            raise _in_flight()
        return taken  # type: ignore[no-any-return]


async def _release(engine: AsyncEngine, caller: _Caller, claim_id: UUID) -> None:
    async with engine.begin() as conn:
        await conn.execute(_SET_ORG, {"org": str(caller.org_id)})
        await conn.execute(_RELEASE, {"id": claim_id})


async def idempotent(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    caller: _Caller,
    produce: Callable[[], Awaitable[Any]],
    *,
    status_code: int = 200,
    required: bool = False,
) -> Response[Any]:
    """Run `produce` at most once per Idempotency-Key; its result (a msgspec Struct or any JSON-able
    value) is the response body. Without the header it simply runs (or 400 when `required`)."""
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
    claimed = await _claim(engine, caller, key, method, path, digest)
    if isinstance(claimed, Response):
        return claimed
    try:
        result = await produce()
        body = msgspec.json.encode(result)
        await db_session.execute(_COMPLETE, {"id": claimed, "status": status_code, "body": body})
        await db_session.commit()
    except BaseException:
        try:
            await db_session.rollback()
        finally:
            await _release(engine, caller, claimed)
        raise
    return Response(content=body, status_code=status_code, media_type="application/json")
