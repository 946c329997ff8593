"""Field photos under the organisation's retention (`photo_days`): a confirmed photo older than
that is deleted by `retention.apply`, in the organisation's own session. The row's deletion
queues its photo and thumbnail in `storage_deletion` by trigger (0021) in the same transaction,
and `storage.janitor` deletes the objects from that queue, retrying failures: nothing is deleted
from storage here, so a storage outage loses no deletion."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.retention.public import RetentionSettings, register_purger

_PURGE = text(
    "DELETE FROM job_photo WHERE id IN (SELECT id FROM job_photo WHERE org_id = :org_id"
    " AND status = 'confirmed' AND confirmed_at < now() - make_interval(days => :days)"
    " ORDER BY confirmed_at LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


async def purge_photos(session: AsyncSession, org_id: UUID, policy: RetentionSettings, batch: int) -> int:
    result = await session.execute(_PURGE, {"org_id": org_id, "days": policy.photo_days, "batch": batch})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


register_purger("photos", purge_photos)
