"""`storage.janitor` (the operations guides' `storage-janitor` / `storage_janitor`), periodic:

1. photos never confirmed, their upload form expired more than STORAGE_JANITOR_GRACE_SECONDS ago,
   and confirmed photos older than ORDER_PHOTO_RETENTION_DAYS: their rows are deleted, and the
   `job_photo` delete trigger queues their objects in `storage_deletion` in that same transaction;
2. the queue: each due object is deleted from storage and its row removed; a failed delete stays
   queued with its attempt count, error and a backoff, and is retried on a later run.

It runs with no organisation bound and finds its work through the SECURITY DEFINER look-ups of
0021, then acts on each row inside that row's organisation. Every step is idempotent (a crashed
run is redone by the next: rows are deleted only after storage said the object is gone). What it
did is logged and counted (storage_janitor_photos_total, storage_janitor_deletes_total,
storage_delete_queue)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from spotless.lib import metrics
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot
from spotless.lib.storage import Storage, build_storage
from spotless.settings import Settings

logger = logging.getLogger("spotless.evidence")

JANITOR_JOB = "storage.janitor"
BATCH = 500


def _every(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.photos.janitor_interval_seconds)


@job(
    JANITOR_JOB,
    aliases=("storage-janitor",),
    every=_every,
    max_retries=3,
    time_limit_ms=30 * 60_000,
    max_age_ms=3_600_000,
)
async def storage_janitor_job(slot: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JANITOR_JOB, slot) as mine:
        if not mine:
            return
        report = await run_janitor(rt)
        logger.info("storage janitor: %s", report)


async def run_janitor(rt: JobRuntime, storage: Storage | None = None, *, now: datetime | None = None) -> dict[str, int]:
    storage = storage or build_storage(rt.settings)
    now = now or datetime.now(UTC)
    photos = rt.settings.photos
    report = {"unconfirmed": 0, "retention": 0, "deleted": 0, "delete_failed": 0, "queued": 0}
    async with rt.session() as session:
        due = (
            await session.execute(
                text("SELECT org_id, photo_id, action FROM storage_janitor_due(:unconfirmed, :retained, :limit)"),
                {
                    "unconfirmed": now - timedelta(seconds=photos.janitor_grace_seconds),
                    "retained": now - timedelta(days=photos.retention_days),
                    "limit": BATCH,
                },
            )
        ).all()
    for org_id, photo_id, action in due:
        async with rt.session(org_id) as session:
            # Re-checked inside the organisation: a photo confirmed meanwhile is not removed.
            status = "pending" if action == "unconfirmed" else "confirmed"
            removed = await session.execute(
                text("DELETE FROM job_photo WHERE id = :id AND org_id = :org AND status = :status"),
                {"id": photo_id, "org": org_id, "status": status},
            )
        if removed.rowcount:  # type: ignore[attr-defined]
            report[action] += 1
            metrics.STORAGE_JANITOR_PHOTOS.labels(reason=action).inc()

    async with rt.session() as session:
        queued = (
            await session.execute(
                text("SELECT org_id, deletion_id, object_key FROM storage_deletions_due(:now, :limit)"),
                {"now": now, "limit": BATCH},
            )
        ).all()
    for org_id, deletion_id, key in queued:
        try:
            await storage.delete(key)
        except Exception as exc:
            report["delete_failed"] += 1
            metrics.STORAGE_JANITOR_DELETES.labels(outcome="failed").inc()
            logger.warning("storage janitor: could not delete %s (retried later): %s", key, exc)
            async with rt.session(org_id) as session:
                await session.execute(
                    text(
                        "UPDATE storage_deletion SET attempts = attempts + 1, last_error = left(:error, 500),"
                        # Backoff 2, 4, 8 ... minutes, at most 6 hours: a storage outage is not hammered.
                        " not_before = CAST(:now AS timestamptz) + least(interval '6 hours',"
                        " make_interval(mins => power(2, least(attempts + 1, 12))::int)), updated_at = now()"
                        " WHERE id = :id AND org_id = :org"
                    ),
                    {
                        "error": f"{type(exc).__name__}: {exc}",
                        "now": now,
                        "id": deletion_id,
                        "org": org_id,
                    },
                )
            continue
        async with rt.session(org_id) as session:
            await session.execute(
                text("DELETE FROM storage_deletion WHERE id = :id AND org_id = :org"),
                {"id": deletion_id, "org": org_id},
            )
        report["deleted"] += 1
        metrics.STORAGE_JANITOR_DELETES.labels(outcome="deleted").inc()

    async with rt.session() as session:
        report["queued"] = int(
            await session.scalar(text("SELECT count(*) FROM storage_deletions_due('infinity', 1000000)")) or 0
        )
    metrics.STORAGE_DELETE_QUEUE.set(report["queued"])
    return report
