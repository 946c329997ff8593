"""Writing busy time synced from a worker's own calendar (see `models.ExternalBusy`). The calendar
integration owns the sync; workforce owns the rows, so availability and assignment read them with
time off (`schedules`) without knowing where they came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.workforce.models import ExternalBusy


@dataclass(frozen=True)
class BusyBlock:
    external_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class StoredBusy:
    id: UUID
    external_id: str
    starts_at: datetime
    ends_at: datetime
    changed: bool  # new, or its times moved


async def upsert_external_busy(
    session: AsyncSession, org_id: UUID, worker_id: UUID, source_id: UUID, blocks: Sequence[BusyBlock]
) -> list[StoredBusy]:
    """Insert or move `blocks` of one source (one statement); says which are new or moved."""
    if not blocks:
        return []
    keys = [b.external_id for b in blocks]
    before = {
        row.external_id: (row.starts_at, row.ends_at)
        for row in await session.execute(
            select(ExternalBusy.external_id, ExternalBusy.starts_at, ExternalBusy.ends_at).where(
                ExternalBusy.source_id == source_id, ExternalBusy.external_id.in_(keys)
            )
        )
    }
    now = datetime.now(UTC)
    latest = {b.external_id: b for b in blocks}  # one row per key even if a page repeated an event
    stmt = pg_insert(ExternalBusy).values(
        [
            {
                "id": uuid7(),
                "org_id": org_id,
                "worker_id": worker_id,
                "source_id": source_id,
                "external_id": b.external_id,
                "starts_at": b.starts_at,
                "ends_at": b.ends_at,
                "created_at": now,
                "updated_at": now,
            }
            for b in latest.values()
        ]
    )
    upsert = stmt.on_conflict_do_update(
        constraint="uq_external_busy_source_event",
        set_={
            "starts_at": stmt.excluded.starts_at,
            "ends_at": stmt.excluded.ends_at,
            "worker_id": stmt.excluded.worker_id,
            "updated_at": now,
        },
    ).returning(ExternalBusy.id, ExternalBusy.external_id, ExternalBusy.starts_at, ExternalBusy.ends_at)
    return [
        StoredBusy(r.id, r.external_id, r.starts_at, r.ends_at, before.get(r.external_id) != (r.starts_at, r.ends_at))
        for r in await session.execute(upsert)
    ]


async def remove_external_busy(session: AsyncSession, source_id: UUID, external_ids: Sequence[str]) -> int:
    if not external_ids:
        return 0
    result = await session.execute(
        delete(ExternalBusy).where(
            ExternalBusy.source_id == source_id, ExternalBusy.external_id.in_(list(dict.fromkeys(external_ids)))
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def clear_external_busy(session: AsyncSession, source_id: UUID, *, keep: Sequence[str] | None = None) -> int:
    """Every block of the source (a full resync starts over; a disconnected calendar blocks nothing)."""
    stmt = delete(ExternalBusy).where(ExternalBusy.source_id == source_id)
    if keep:
        stmt = stmt.where(ExternalBusy.external_id.not_in(list(keep)))
    result = await session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def external_busy_of(session: AsyncSession, source_id: UUID) -> list[BusyBlock]:
    rows = await session.execute(
        select(ExternalBusy.external_id, ExternalBusy.starts_at, ExternalBusy.ends_at)
        .where(ExternalBusy.source_id == source_id)
        .order_by(ExternalBusy.starts_at)
    )
    return [BusyBlock(r.external_id, r.starts_at, r.ends_at) for r in rows]
