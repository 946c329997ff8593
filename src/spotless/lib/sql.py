"""Hot reads compiled once and run through asyncpg on the request's own transaction.

A list read through `session.execute(select(...))` paid, on every request, for building the
statement, walking it for its cache key, the ORM's execution context and SQLAlchemy's result rows:
about 1.5 ms of a 2.7 ms empty list under load, more than the query's round trip. A `Compiled`
statement is built and compiled once per shape (the set of filters present); each request only
binds its values in order and calls asyncpg's `fetch` (whose prepared-statement cache then skips
the parse too) on the connection of the request's session. That connection is the unit of work's:
BEGIN (with the organisation's scope, `db/dialect.py`) is sent first if it has not been, the
request's COMMIT ends it, and RLS applies as to any other statement. A hot write goes the same
way: `Compiled` takes an INSERT too, and `NewRow` writes one new ORM object with it.

Values are bound by name (`bindparam("start")`), as the driver takes them (UUID, aware datetime,
int, str): there is no SQLAlchemy bind processing. Rows come back as named tuples with the selected
columns' names (attribute access, as SQLAlchemy rows), JSONB already decoded by the engine's codec.
A database error is raised as SQLAlchemy's `DBAPIError`, like any other statement's, so the unit of
work and the problem handlers treat it the same way; `before_cursor_execute` listeners see the
statement as they see SQLAlchemy's own."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON, Select, bindparam, insert, inspect
from sqlalchemy.dialects.postgresql.ranges import AbstractRange
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from spotless.db.dialect import ScopedConnection


class Compiled:
    """One statement, compiled for asyncpg the first time it runs."""

    __slots__ = ("_defaults", "_names", "_row", "_sql", "statement")

    def __init__(self, statement: Select[Any] | Any) -> None:  # any Select or DML (its row type is free)
        self.statement = statement
        self._sql: str | None = None
        self._names: tuple[str, ...] = ()
        self._defaults: dict[str, Any] = {}
        self._row: Any = None

    def _compile(self, session: AsyncSession) -> str:
        bind = session.bind
        if bind is None:
            raise RuntimeError("the session has no engine")
        compiled = self.statement.compile(dialect=bind.dialect)
        if any(getattr(b, "expanding", False) for b in compiled.binds.values()):
            raise ValueError("expanding IN parameters cannot be bound once: use = ANY(:name)")
        self._names = tuple(compiled.positiontup or ())
        # Values fixed at build time (constants in the statement) are the defaults of their names.
        self._defaults = {k: v for k, v in compiled.params.items() if v is not None}
        # A write's rows are its RETURNING columns (none without one).
        columns = getattr(self.statement, "selected_columns", None)
        if columns is None:
            columns = getattr(self.statement, "exported_columns", None)
        self._row = namedtuple("Row", list(columns.keys()) if columns is not None else [], rename=True)  # type: ignore[misc]
        self._sql = str(compiled)
        return self._sql

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        """Run a write (INSERT, UPDATE) whose rows nobody reads."""
        await self.rows(session, params)

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        sql = self._sql or self._compile(session)
        defaults = self._defaults
        try:
            args = [params[n] if n in params else defaults[n] for n in self._names]
        except KeyError as missing:
            raise ValueError(f"no value bound for {missing}") from None
        connection = await session.connection()
        sync = connection.sync_connection
        if sync is not None and (
            sync._has_events or sync.engine._has_events
        ):  # listeners (statement capture in tests, tracing) see it too
            sync.dispatch.before_cursor_execute(sync, None, sql, tuple(args), None, False)
        fairy = await connection.get_raw_connection()
        adapted: ScopedConnection = fairy.dbapi_connection  # type: ignore[assignment]
        if not adapted.begun:
            await adapted._start_transaction()  # BEGIN with the scope, as SQLAlchemy would
        try:
            driver: Any = adapted._connection
            records = await driver.fetch(sql, *args)
        except Exception as error:  # asyncpg's, raised the way SQLAlchemy raises them
            try:
                adapted._handle_exception(error)
            except Exception as adapted_error:
                raise DBAPIError.instance(
                    sql, args, adapted_error, adapted.dbapi.Error, hide_parameters=True
                ) from error
            raise
        make = self._row._make
        return [make(r) for r in records]


class Shapes:
    """The compiled statements of one read, one per shape: `build(shape)` returns the statement for
    a shape (e.g. which filters are present), binding every value by name."""

    __slots__ = ("_build", "_compiled")

    def __init__(self, build: Callable[[Any], Select[Any]]) -> None:
        self._build = build
        self._compiled: dict[Hashable, Compiled] = {}

    def __call__(self, shape: Hashable) -> Compiled:
        found = self._compiled.get(shape)
        if found is None:
            found = self._compiled[shape] = Compiled(self._build(shape))
        return found


def _json(value: Any) -> Any:
    return None if value is None else msgspec.json.encode(value).decode()  # the engine's JSONB codec takes text


def _range(value: Any) -> Any:
    if value is None:
        return None
    return asyncpg.Range(
        value.lower, value.upper, lower_inc=value.lower_inc, upper_inc=value.upper_inc, empty=value.isempty
    )


class NewRow:
    """INSERT one new ORM object through asyncpg (compiled once, as `Compiled`) and attach it to the
    session as persistent, which is what `session.add` and a flush do, without the unit of work's
    per-flush machinery (~12 % of a booking write on a profile). Python-side defaults are filled in
    as a flush would fill them (and set on the object, so nothing is left to load). Columns with a
    server default are the database's (a trigger may set them): never bound, always returned. No
    mapper insert events run (none are declared for the models written this way)."""

    __slots__ = ("_bound", "_compiled", "_returned")

    def __init__(self, model: type[Any]) -> None:
        mapper = inspect(model)
        self._bound: list[tuple[str, Any, Any]] = []
        self._returned: list[str] = []
        values, returning = {}, []
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            if column.server_default is not None:
                self._returned.append(attr.key)
                returning.append(column)
                continue
            convert = (
                _json if isinstance(column.type, JSON) else _range if isinstance(column.type, AbstractRange) else None
            )
            self._bound.append((attr.key, column, convert))
            values[column.name] = bindparam(attr.key, type_=column.type)
        statement = insert(mapper.local_table).values(values)
        self._compiled = Compiled(statement.returning(*returning) if returning else statement)

    async def add(self, session: AsyncSession, obj: Any) -> None:
        if session.new or session.dirty or session.deleted:
            await session.flush()  # what is pending goes first, as in a flush (a new series the row refers to)
        state = obj.__dict__
        params: dict[str, Any] = {}
        for key, column, convert in self._bound:
            if key in state:
                value = state[key]
            else:
                default = column.default
                if default is not None and default.is_scalar:
                    value = default.arg
                elif default is not None and default.is_callable:
                    value = default.arg(None)
                else:
                    value = None
                setattr(obj, key, value)
            params[key] = convert(value) if convert is not None else value
        for key in self._returned:
            if key in state:
                raise ValueError(f"{key} is the database's (a server default): leave it unset")
        rows = await self._compiled.rows(session, params)
        if self._returned:
            for key, value in zip(self._returned, rows[0], strict=True):
                setattr(obj, key, value)
        make_transient_to_detached(obj)
        session.add(obj)


__all__ = ["Compiled", "NewRow", "Shapes"]
