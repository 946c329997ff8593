"""Engine and session wiring, including the per-transaction organisation that RLS policies read."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from spotless.db.dialect import defer_scope, scoped_dbapi
from spotless.settings import DatabaseSettings

ORG_INFO_KEY = "org_id"
# The authenticated request's organisation. Sessions opened while it is set (the request's own
# session) scope every transaction to it; jobs bind their session explicitly with `bind_org`.
_current_org: ContextVar[str | None] = ContextVar("current_org", default=None)
_SET_ORG = text("SELECT set_config('app.org_id', :org_id, true)")
# advanced-alchemy's FileObject and cache listeners run on every flush and commit, and decide
# whether they are on by calling `engine.execution_options()`, which builds a new OptionEngine each
# time (~3 % of a booking write). We store no FileObject and use no cache: off, in every session.
SESSION_INFO: dict[str, Any] = {"enable_file_object_listener": False, "enable_cache_listener": False}


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def connect_args(db: DatabaseSettings, application_name: str) -> dict[str, Any]:
    server_settings = {
        "statement_timeout": str(db.statement_timeout_ms),
        "application_name": application_name,
        # Sessions idle inside a transaction hold locks; never let one linger.
        "idle_in_transaction_session_timeout": str(max(db.statement_timeout_ms * 4, 60_000)),
    }
    if db.app_role:
        # The login user may own the tables (dev, CI); acting as the app role keeps RLS in force anyway.
        server_settings["role"] = db.app_role
    return {"server_settings": server_settings, "timeout": 5}


def create_engine(db: DatabaseSettings, application_name: str = "spotless", **overrides: Any) -> AsyncEngine:
    """No pre-ping per checkout (a `BEGIN; ROLLBACK` round trip on every request): a dead pooled
    connection fails at its transaction's BEGIN instead, SQLAlchemy drops it (and the pool's older
    connections), and the request's unit of work reruns the request once (db/dialect.py)."""
    options: dict[str, Any] = {
        "pool_size": db.pool_size,
        "max_overflow": db.max_overflow,
        "pool_timeout": db.pool_timeout_seconds,
        "pool_pre_ping": False,
        # The most recently used connection first: its prepared statements are warm, and the
        # idle ones at the back are the ones left to time out.
        "pool_use_lifo": True,
        "echo": db.echo,
        # JSONB values go through msgspec both ways (the standard library parser was ~6 % of a list page).
        "json_deserializer": msgspec.json.decode,
        "json_serializer": _encode_json,
        "hide_parameters": True,  # errors and echo never carry bound values (emails, hashes, tokens)
        "connect_args": connect_args(db, application_name),
    }
    if make_url(db.url).get_driver_name() == "asyncpg":
        options["module"] = scoped_dbapi()
    options.update(overrides)
    return create_async_engine(db.url, **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, info=dict(SESSION_INFO))


def bind_org(session: AsyncSession | Session, org_id: UUID | str | None) -> None:
    """Scope this session to one organisation: every transaction it opens sets `app.org_id` locally."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    sync_session.info[ORG_INFO_KEY] = str(org_id) if org_id else None


async def apply_org_now(session: AsyncSession, org_id: UUID | str | None) -> None:
    """Bind and also apply to a transaction that is already open (after_begin has fired already);
    when its BEGIN has not been sent yet, the scope just rides with it (no round trip)."""
    bind_org(session, org_id)
    if session.in_transaction():
        connection = await session.connection()
        if org_id and defer_scope(connection.sync_connection, org_id):
            return
        await session.execute(_SET_ORG, {"org_id": str(org_id) if org_id else ""})


def session_org(session: AsyncSession | Session) -> str | None:
    """The organisation this session's transactions are scoped to."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    return sync_session.info.get(ORG_INFO_KEY) or _current_org.get()


def set_request_org(org_id: UUID | str | None) -> Token[str | None]:
    return _current_org.set(str(org_id) if org_id else None)


def reset_request_org(token: Token[str | None]) -> None:
    _current_org.reset(token)


def current_org() -> str | None:
    return _current_org.get()


@event.listens_for(Session, "after_begin")
def _set_org_on_begin(session: Session, transaction: Any, connection: Any) -> None:
    if transaction.nested:
        return  # a savepoint is inside the scoped transaction: `set_config(..., true)` holds there
    org_id = session.info.get(ORG_INFO_KEY) or _current_org.get()
    if org_id and not defer_scope(connection, org_id):
        connection.execute(_SET_ORG, {"org_id": org_id})
