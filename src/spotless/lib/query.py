"""The query kit every service uses: one way to fetch-or-404, to flush-or-409, and to page.

- `get_or_404(session, Model, id, "service")`: RLS already hides other organisations' rows, so
  "not yours" and "does not exist" are the same 404 (never a hint that the id exists elsewhere).
- `flush_or_conflict(session, slug, detail)`: pre-checks give the friendly answer; a concurrent
  writer that slips past them still meets the unique key, and that must be a 409, never a 500.
  A constraint with its own registered problem (`lib.errors.register_constraint_problem`) keeps it.
- `offset_page(...)`: a bounded offset page (`limit` ≤ 200, `offset` ≤ 1,000) whose `total` rides
  on the rows as `count(*) OVER ()`: one round trip, no separate `COUNT(*)` subquery. Only a page
  past the end (no row to carry the window) costs a second, cheap count.
- `cursor_page(...)`: a keyset page (`lib.pagination.Keyset`) with `has_more` from one extra row.
- `KeysetRead(keyset, build)`: the same page for a hot list, its statement compiled once per shape
  and run through asyncpg (`lib.sql`); `build(shape)` binds every value by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.lib.errors import conflict, not_found, registered_problem
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.sql import Shapes

M = TypeVar("M")
R = TypeVar("R")
T = TypeVar("T")

_TOTAL = "_page_total"


async def get_or_404(session: AsyncSession, model: type[M], ident: UUID, what: str, **options: Any) -> M:
    """The row, or 404 `not-found` naming `what` ("service", "worker"). `options` go to
    `session.get` (e.g. `with_for_update=True`, `options=[selectinload(...)]`)."""
    found = await session.get(model, ident, **options)
    if found is None:
        raise not_found(what)
    return found


async def flush_or_conflict(session: AsyncSession, slug: str, detail: str) -> None:
    """Flush; a unique or exclusion violation becomes 409 `slug`, unless its constraint has a
    registered problem of its own (then that one)."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise (registered_problem(exc) or conflict(slug, detail)) from None


async def offset_page(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    limit: int,
    offset: int,
    to: Callable[[Any], T],
    order_by: Sequence[Any] = (),
) -> OffsetPagination[T]:
    """One bounded offset page of `stmt`, each row mapped by `to`. `stmt` selects one entity (or
    column set); `to` receives that entity, or the row when several are selected."""
    ordered = stmt.order_by(*order_by) if order_by else stmt
    paged = ordered.add_columns(func.count().over().label(_TOTAL)).limit(limit).offset(offset)
    rows = (await session.execute(paged)).all()
    if rows:
        total = int(rows[0][-1])
    else:
        total = int(await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
    width = len(rows[0]) - 1 if rows else 0
    items = [to(row[0] if width == 1 else tuple(row[:width])) for row in rows]
    return OffsetPagination(items=items, total=total, limit=limit, offset=offset)


async def cursor_page(
    session: AsyncSession,
    stmt: Select[Any],
    keyset: Keyset[R],
    *,
    cursor: str | None,
    limit: int,
    to: Callable[[R], T],
    scalars: bool = True,
) -> CursorPage[T]:
    """One keyset page of `stmt` in `keyset`'s order, resuming after `cursor`. With `scalars`
    (the default) each row is the first selected entity; otherwise the whole row."""
    ordered = keyset.apply(stmt, cursor, limit)
    result = await session.execute(ordered)
    rows: list[Any] = list(result.scalars().all()) if scalars else list(result.all())
    kept, next_cursor, has_more = keyset.page(rows, limit)
    return CursorPage(items=[to(r) for r in kept], next_cursor=next_cursor, has_more=has_more, limit=limit)


class KeysetRead:
    """A hot list: `build(shape)` is its statement for one shape (which filters are present),
    with every value a named `bindparam`; it is compiled once per shape and cursor presence."""

    __slots__ = ("_shapes", "keyset")

    def __init__(self, keyset: Keyset[Any], build: Callable[[Any], Select[Any]]) -> None:
        self.keyset = keyset
        self._shapes = Shapes(lambda key: keyset.bound(build(key[0]), key[1]))

    async def page(
        self,
        session: AsyncSession,
        shape: Any,
        params: dict[str, Any],
        *,
        cursor: str | None,
        limit: int,
        to: Callable[[Any], T],
    ) -> CursorPage[T]:
        bound = {**params, "page_limit": limit + 1}
        if cursor:
            bound.update(self.keyset.after(cursor))
        rows = await self._shapes((shape, bool(cursor))).rows(session, bound)
        kept, next_cursor, has_more = self.keyset.page(rows, limit)
        return CursorPage(items=[to(r) for r in kept], next_cursor=next_cursor, has_more=has_more, limit=limit)


__all__ = ["KeysetRead", "cursor_page", "flush_or_conflict", "get_or_404", "offset_page"]
