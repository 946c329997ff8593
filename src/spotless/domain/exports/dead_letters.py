"""The dead jobs of one organisation: background jobs that ran out of retries (Dramatiq's dead
letters, `outbox_dead_count`: every job is requested through the outbox) and exports that
failed for good (`export_dead_count`). Admins list and replay their own organisation's only: a
dead letter belongs to the organisation its job names (lib/jobs/dlq.message_org), and a system
job's is nobody's here (the operators' `just dlq` sees everything).

A replay is requested in the caller's transaction (the outbox); the dead letter is removed only
after that commits, so a failed request loses nothing (at worst a job is replayed twice, and
jobs are idempotent)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.unit_of_work import after_commit
from spotless.domain.exports.actors import run_export_job
from spotless.domain.exports.models import Export
from spotless.domain.exports.schemas import DeadJob, DeadLetters, DlqReplayed
from spotless.lib.jobs import enqueue
from spotless.lib.jobs.dlq import drop_dead_letter, find_org_dead_letter, org_dead_letters
from spotless.lib.jobs.registry import JOBS


async def dead_letters(
    session: AsyncSession, redis: Redis, namespace: str, org_id: UUID, kind: str, limit: int
) -> DeadLetters:
    outbox_count, outbox_items = await org_dead_letters(redis, namespace, str(org_id), limit)
    export_count = int(
        await session.scalar(
            select(func.count()).select_from(Export).where(Export.org_id == org_id, Export.status == "failed")
        )
        or 0
    )
    items: list[DeadJob] = []
    if kind in ("all", "outbox"):
        items += [
            DeadJob(
                kind="outbox",
                id=entry["redis_id"],
                name=entry["actor"],
                error=entry["error"],
                dead_at=datetime.fromtimestamp(entry["dead_at_ms"] / 1000, UTC),
            )
            for entry in outbox_items
        ]
    if kind in ("all", "export"):
        failed = await session.scalars(
            select(Export)
            .where(Export.org_id == org_id, Export.status == "failed")
            .order_by(Export.dead_at.desc(), Export.id.desc())
            .limit(limit)
        )
        items += [
            DeadJob(kind="export", id=str(e.id), name=f"exports.{e.kind}", error=e.error, dead_at=e.dead_at)
            for e in failed
        ]
    items.sort(key=lambda item: item.dead_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return DeadLetters(outbox_dead_count=outbox_count, export_dead_count=export_count, items=items[:limit])


_REQUEUE = text(
    """
    UPDATE exports e SET status = 'queued', attempts = 0, error = NULL, dead_at = NULL, finished_at = NULL,
           progress_done = 0, updated_at = now()
    WHERE e.id = :id AND e.org_id = :org_id AND e.status = 'failed'
      AND NOT EXISTS (
          SELECT 1 FROM exports o
          WHERE o.org_id = e.org_id AND o.kind = e.kind AND o.status IN ('queued', 'running')
            AND o.period_from IS NOT DISTINCT FROM e.period_from AND o.period_to IS NOT DISTINCT FROM e.period_to
            AND o.subject_id IS NOT DISTINCT FROM e.subject_id)
    RETURNING e.id
    """
)


async def replay_exports(session: AsyncSession, org_id: UUID, ids: list[str]) -> DlqReplayed:
    replayed, missing = 0, []
    for raw in ids:
        try:
            export_id = UUID(raw)
        except ValueError:
            missing.append(raw)
            continue
        requeued = (await session.execute(_REQUEUE, {"id": export_id, "org_id": org_id})).scalar_one_or_none()
        if requeued is None:
            missing.append(raw)
            continue
        run_export_job.enqueue(session, org_id, export_id)
        replayed += 1
    return DlqReplayed(replayed=replayed, not_found=missing)


async def replay_jobs(session: AsyncSession, redis: Redis, namespace: str, org_id: UUID, ids: list[str]) -> DlqReplayed:
    replayed, missing = 0, []
    for redis_id in dict.fromkeys(ids):
        found = await find_org_dead_letter(redis, namespace, str(org_id), redis_id)
        if found is None or found[1].actor_name not in JOBS:
            missing.append(redis_id)
            continue
        queue, message = found
        enqueue(session, message.actor_name, *message.args, **message.kwargs)
        after_commit(session, drop_dead_letter, redis, namespace, queue, redis_id)
        replayed += 1
    return DlqReplayed(replayed=replayed, not_found=missing)
