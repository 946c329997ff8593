"""Pages whose cost does not grow with depth.

Lists that grow without bound (bookings, clients, audit) page by an opaque keyset cursor: the
cursor carries the sort key and id of the last row answered, and the next page is
`WHERE (sort_key, id) > (...) ORDER BY sort_key, id LIMIT n + 1` on an index with that order, so
page 1,000 costs what page 1 does. No `COUNT(*)`: `has_more` comes from the one extra row read.

Short lists keep `limit`/`offset` with the offset capped (`Offset`), so a deep offset is a 400
saying to narrow the filters rather than a scan that reaches the statement timeout.

The cursor is base64url(JSON [list name, sort values..., id]) plus a short checksum: it is opaque
to clients (they only echo it), and any edit, truncation or a cursor from another list answers
400 `invalid-cursor`. It is not a secret and grants nothing: it only says where to resume inside a
query that RLS and the caller's filters already scope."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter
from sqlalchemy import Integer, Select, bindparam, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from spotless.lib.errors import Problem

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000
_MAX_CURSOR_CHARS = 512
_CHECKSUM_BYTES = 8
# Detects edits and corruption (not forgery: a forged cursor is only a resume position).
_CHECKSUM_KEY = b"spotless.pagination.cursor.v1"

Limit = Annotated[
    int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT}, max {MAX_LIMIT})")
]
Offset = Annotated[
    int,
    Parameter(
        ge=0, le=MAX_OFFSET, description=f"rows to skip (at most {MAX_OFFSET}; narrow the filters to go further)"
    ),
]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=_MAX_CURSOR_CHARS,
        description="`next_cursor` of the previous page; omit for the first page",
    ),
]


class CursorPage(msgspec.Struct, Generic[T], kw_only=True):
    """One page of a cursor-paged list. `next_cursor` is set exactly when `has_more` is."""

    items: list[T]
    next_cursor: str | None
    has_more: bool
    limit: int


def invalid_cursor() -> Problem:
    return Problem(
        400,
        "invalid-cursor",
        "The cursor is not valid",
        "Pass back `next_cursor` exactly as a previous page of this list returned it, or omit it for the first page.",
        errors=[{"field": "cursor", "message": "not a cursor of this list"}],
    )


def _checksum(payload: bytes) -> bytes:
    return hmac.new(_CHECKSUM_KEY, payload, hashlib.blake2b).digest()[:_CHECKSUM_BYTES]


class Keyset(Generic[R]):
    """A list's keyset order: `columns` (unique together, the last one usually `id`), ascending or
    descending, with the Python type of each so a cursor decodes into exactly those types."""

    def __init__(
        self,
        name: str,
        columns: Sequence[InstrumentedAttribute[Any]],
        types: Sequence[type],
        *,
        descending: bool = False,
        key: Callable[[R], tuple[Any, ...]],
    ) -> None:
        if len(columns) != len(types):
            raise ValueError("one type per keyset column")
        self.name = name
        self.columns = list(columns)
        self.descending = descending
        self._key = key
        self._payload_type: Any = tuple.__class_getitem__((str, *types))

    # --- the token ---

    def encode(self, row: R) -> str:
        payload = msgspec.json.encode((self.name, *self._key(row)))
        return base64.urlsafe_b64encode(payload + _checksum(payload)).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str) -> tuple[Any, ...]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid_cursor() from None
        payload, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
        if len(raw) <= _CHECKSUM_BYTES or not hmac.compare_digest(checksum, _checksum(payload)):
            raise invalid_cursor()
        try:
            name, *values = msgspec.json.decode(payload, type=self._payload_type)
        except msgspec.DecodeError:
            raise invalid_cursor() from None
        if name != self.name:
            raise invalid_cursor()
        return tuple(values)

    # --- the query ---

    def apply(self, stmt: Select[Any], cursor: str | None, limit: int) -> Select[Any]:
        """Order `stmt` by the keyset, resume after `cursor`, and read one row more than `limit`."""
        if cursor:
            after = self.decode(cursor)
            position = tuple_(*self.columns)
            bound = tuple_(*(literal(v, type_=c.type) for c, v in zip(self.columns, after, strict=True)))
            stmt = stmt.where(position < bound if self.descending else position > bound)
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return stmt.order_by(None).order_by(*order).limit(limit + 1)

    def bound(self, stmt: Select[Any], resumed: bool) -> Select[Any]:
        """`apply` with every value bound by name, to compile once (`lib.sql`): `after_<i>` for
        the cursor's values (`after`), `page_limit` for one row more than the limit."""
        if resumed:
            position = tuple_(*self.columns)
            bound = tuple_(*(bindparam(f"after_{i}", type_=c.type) for i, c in enumerate(self.columns)))
            stmt = stmt.where(position < bound if self.descending else position > bound)
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return stmt.order_by(None).order_by(*order).limit(bindparam("page_limit", type_=Integer))

    def after(self, cursor: str) -> dict[str, Any]:
        """The cursor's values, named as `bound` binds them."""
        return {f"after_{i}": v for i, v in enumerate(self.decode(cursor))}

    def page(self, rows: Sequence[R], limit: int) -> tuple[list[R], str | None, bool]:
        """The rows to answer, the cursor of the next page (None on the last) and `has_more`."""
        has_more = len(rows) > limit
        kept = list(rows[:limit])
        return kept, (self.encode(kept[-1]) if has_more and kept else None), has_more
