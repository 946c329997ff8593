"""asyncpg as SQLAlchemy drives it, minus the round trips that carry nothing.

- **The organisation rides with BEGIN.** SQLAlchemy's asyncpg adapter sends `BEGIN` as a round trip
  of its own when a transaction's first statement runs, and our `after_begin` listener used to send
  `set_config('app.org_id', ...)` as another. Here the listener leaves the organisation on the
  connection (`begin_with`) and the adapter sends ``BEGIN; SELECT set_config('app.org_id', '<id>',
  true)`` as one simple query: the scope is set inside the transaction before any statement of it,
  exactly as before, in one round trip instead of two. The id is a parsed UUID (hex and dashes
  only) before it is spliced. Whatever ends the transaction, or a connection going back to the
  pool, clears a scope that was never sent, so it can never reach another transaction.
- **No pre-ping.** A dead pooled connection (server restart, failover, idle timeout) shows at the
  first round trip of a transaction, its BEGIN. That failure is noted on the current attempt
  (`Attempt.lost_at_begin`) so the request's unit of work can rerun the request once on a fresh
  connection; SQLAlchemy's disconnect handling has already dropped it (and the pool's older ones).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_dbapi
from sqlalchemy.util.concurrency import await_

_BEGIN = {
    None: "BEGIN",
    "read_committed": "BEGIN ISOLATION LEVEL READ COMMITTED",
    "read_uncommitted": "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
    "repeatable_read": "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "serializable": "BEGIN ISOLATION LEVEL SERIALIZABLE",
}


@dataclass
class Attempt:
    """What the database did during one attempt at a request (see db/unit_of_work.py)."""

    lost_at_begin: bool = False  # a transaction could not begin: its connection was dead
    committed: bool = False  # a COMMIT was sent

    @property
    def rerun_safe(self) -> bool:
        return self.lost_at_begin and not self.committed


current_attempt: ContextVar[Attempt | None] = ContextVar("db_attempt", default=None)


def scope_sql(org_id: UUID | str) -> str:
    """The statement that scopes a transaction to `org_id` (a UUID, validated here)."""
    return f"SELECT set_config('app.org_id', '{UUID(str(org_id))}', true)"


class _Transaction:
    """What the adapter needs of asyncpg's Transaction: commit and rollback."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def commit(self) -> None:
        await self._connection.execute("COMMIT")

    async def rollback(self) -> None:
        await self._connection.execute("ROLLBACK")


class ScopedConnection(AsyncAdapt_asyncpg_connection):
    __slots__ = ("begin_with",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.begin_with: str | None = None

    @property
    def begun(self) -> bool:
        """BEGIN has been sent (SQLAlchemy's transaction may be open without it)."""
        return self._transaction is not None

    async def _start_transaction(self) -> None:
        if self.isolation_level == "autocommit":
            self.begin_with = None
            return
        scope, self.begin_with = self.begin_with, None
        query = _BEGIN.get(self.isolation_level, "BEGIN")
        if self.readonly:
            query += " READ ONLY"
        if self.deferrable:
            query += " DEFERRABLE"
        if scope:
            query = f"{query}; {scope}"
        raw: Any = self._connection
        try:
            await raw.execute(query)
        except Exception as error:
            if raw.is_closed():
                attempt = current_attempt.get()
                if attempt is not None:
                    attempt.lost_at_begin = True
            elif raw.is_in_transaction():
                # BEGIN ran, the scope did not: roll it back
                self._transaction = _Transaction(raw)  # type: ignore[assignment]
            self._handle_exception(error)
        else:
            self._transaction = _Transaction(raw)  # type: ignore[assignment]

    def commit(self) -> None:
        self.begin_with = None
        if self._transaction is not None:
            attempt = current_attempt.get()
            if attempt is not None:
                attempt.committed = True
        super().commit()

    def rollback(self) -> None:
        self.begin_with = None
        super().rollback()

    def close(self) -> None:
        self.begin_with = None
        super().close()


class ScopedDbapi(AsyncAdapt_asyncpg_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> ScopedConnection:
        creator_fn = kw.pop("async_creator_fn", self.asyncpg.connect)
        cache_size = kw.pop("prepared_statement_cache_size", 100)
        name_func = kw.pop("prepared_statement_name_func", None)
        return await_(  # type: ignore[no-any-return]
            ScopedConnection.create(
                self,
                creator_fn(*arg, **kw),
                prepared_statement_cache_size=cache_size,
                prepared_statement_name_func=name_func,
            )
        )


def scoped_dbapi() -> ScopedDbapi:
    import asyncpg

    return ScopedDbapi(asyncpg)


def defer_scope(connection: Any, org_id: UUID | str) -> bool:
    """Make the transaction of `connection` (a SQLAlchemy Connection) begin scoped to `org_id`
    when BEGIN has not been sent yet. False: the caller must set the scope with a statement."""
    dbapi = connection.connection.dbapi_connection
    if isinstance(dbapi, ScopedConnection) and not dbapi.begun and dbapi.isolation_level != "autocommit":
        dbapi.begin_with = scope_sql(org_id)
        return True
    return False
