"""An export's file as a stream of byte chunks: one CSV, or for the tax export a ZIP of CSVs
written entry by entry (zipfile on a non-seekable sink writes data descriptors, so nothing is
ever rewound and the archive never sits in memory whole)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.exports import sources
from spotless.domain.exports.csvsafe import csv_bytes, csv_chunks
from spotless.domain.exports.sources import Period

Progress = Callable[[int], Awaitable[None]]


async def total_rows(
    session: AsyncSession, kind: str, org_id: UUID, period: Period, subject: UUID | None = None
) -> int:
    if kind == "client_data" and subject is not None:
        from spotless.domain.retention.public import bundle_rows

        return await bundle_rows(session, org_id, subject)
    if kind == "taxes":
        return sum([await t.count(session, org_id, period) for t in sources.TAX_TABLES])
    return await sources.TABLES[kind].count(session, org_id, period)


class RowCounter:
    """Counts rows as they stream and reports every `batch` rows (and once at the end)."""

    def __init__(self, progress: Progress, batch: int) -> None:
        self.progress = progress
        self.batch = batch
        self.done = 0

    async def rows(self, rows: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        async for row in rows:
            yield row
            self.done += 1
            if self.done % self.batch == 0:
                await self.progress(self.done)


async def file_chunks(
    session: AsyncSession, kind: str, org_id: UUID, period: Period, counter: RowCounter, subject: UUID | None = None
) -> AsyncIterator[bytes]:
    if kind == "client_data" and subject is not None:
        # The retention context's bundle (a ZIP of JSON), written into the same streaming sink.
        from spotless.domain.retention.public import bundle_chunks

        async for chunk in bundle_chunks(session, org_id, subject, counter.rows, _Sink()):
            yield chunk
        return
    if kind != "taxes":
        table = sources.TABLES[kind]
        async for chunk in csv_chunks(table.header, counter.rows(table.rows(session, org_id, period))):
            yield chunk
        return
    async for chunk in _tax_zip(session, org_id, period, counter):
        yield chunk


class _Sink(io.RawIOBase):
    """What zipfile writes into: bytes wait here until the generator hands them on."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        self.pending += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.pending = bytes(self.pending), bytearray()
        return data


async def _tax_zip(session: AsyncSession, org_id: UUID, period: Period, counter: RowCounter) -> AsyncIterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        summary = await sources.tax_summary(session, org_id, period)
        with archive.open("summary.csv", "w") as entry:
            entry.write(csv_bytes(sources.TAX_SUMMARY_HEADER, summary))
        yield sink.take()
        for table in sources.TAX_TABLES:
            with archive.open(table.name, "w", force_zip64=True) as entry:
                async for chunk in csv_chunks(table.header, counter.rows(table.rows(session, org_id, period))):
                    entry.write(chunk)
                    if sink.pending:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
