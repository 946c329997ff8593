"""CSV that is safe to open in a spreadsheet, written in bounded chunks.

- A cell starting with `=`, `+`, `-`, `@`, a tab, CR or LF is a formula (or turns into one once a
  spreadsheet strips the whitespace) in Excel, LibreOffice and Google Sheets: it is prefixed with
  `'`, which they show as text. OWASP's list; the common escaping libraries stop at the first four.
  Numbers we write ourselves (cents, counts, negative amounts) are not text and stay as they are.
- Quoting is RFC 4180 (the csv module, QUOTE_MINIMAL, CRLF line ends).
- UTF-8 with a byte-order mark, so Excel opens accents and non-Latin names right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Flush the text buffer to the caller once it holds this much.
CHUNK_CHARS = 64 * 1024


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def cell(value: Any) -> str | int:
    """One value as a cell: text neutralised, numbers and dates in a plain, sortable form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return neutralise(";".join(str(v) for v in value))
    return neutralise(str(value))


def cents(amount: int | None) -> str:
    """Cents as a decimal amount (1234 -> 12.34, -5 -> -0.05): a number, never neutralised."""
    if amount is None:
        return ""
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(int(amount)), 100)
    return f"{sign}{whole}.{part:02d}"


class _Writer:
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")

    def row(self, values: Sequence[Any]) -> None:
        self.writer.writerow([v if isinstance(v, int | Money) else cell(v) for v in values])

    def take(self) -> bytes:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode("utf-8")


class Money(str):
    """A cell already formatted as an amount by `cents` (kept as is, not neutralised)."""

    __slots__ = ()


def money(amount: int | None) -> Money:
    return Money(cents(amount))


async def csv_chunks(header: Sequence[str], rows: AsyncIterable[Sequence[Any]]) -> AsyncIterator[bytes]:
    """The CSV document as byte chunks of about CHUNK_CHARS: memory is one chunk, not the file."""
    out = _Writer()
    out.buffer.write(BOM)
    out.row(header)
    async for values in rows:
        out.row(values)
        if out.buffer.tell() >= CHUNK_CHARS:
            yield out.take()
    yield out.take()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A small CSV (the tax summary) in one piece."""
    out = _Writer()
    out.buffer.write(BOM)
    out.row(header)
    for values in rows:
        out.row(values)
    return out.take()
