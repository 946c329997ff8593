"""The exports context's jobs: `exports.run` (one export; see runner.py) and `exports.sweep`
(periodic): expires finished exports past EXPORT_TTL_HOURS and deletes their files (retrying a
failed delete on the next sweep), and re-sends exports whose worker died or whose message was
lost. The sweep runs with no organisation bound and finds its work through `exports_due` (0019),
then acts on each export inside its own organisation."""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text

from spotless.domain.exports.runner import run_export
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot
from spotless.lib.storage import Storage, build_storage
from spotless.settings import Settings

logger = logging.getLogger("spotless.exports")

RUN_JOB = "exports.run"
SWEEP_JOB = "exports.sweep"
SWEEP_BATCH = 200


def _sweep_every(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.exports.sweep_interval_seconds)


# Retries are the row's (EXPORT_MAX_ATTEMPTS, then `failed`); Dramatiq's are a ceiling above them.
@job(RUN_JOB, queue="exports", max_retries=20, min_backoff_ms=5_000, time_limit_ms=2 * 3_600_000)
async def run_export_job(org_id: UUID, export_id: UUID) -> None:
    await run_export(get_runtime(), org_id, export_id)


@job(SWEEP_JOB, every=_sweep_every, max_retries=3, time_limit_ms=30 * 60_000, max_age_ms=3_600_000)
async def sweep_exports_job(slot: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, SWEEP_JOB, slot) as mine:
        if not mine:
            return
        report = await sweep_exports(rt)
        logger.info("exports sweep: %s", report)


async def sweep_exports(rt: JobRuntime, storage: Storage | None = None) -> dict[str, int]:
    storage = storage or build_storage(rt.settings)
    stale = rt.settings.exports.lease_seconds
    async with rt.session() as session:
        due = (
            await session.execute(
                text(
                    "SELECT org_id, export_id, action FROM exports_due(now(), now() - make_interval(secs => :stale),"
                    " :limit)"
                ),
                {"stale": stale, "limit": SWEEP_BATCH},
            )
        ).all()
    report = {"expired": 0, "deleted": 0, "delete_failed": 0, "resumed": 0}
    for org_id, export_id, action in due:
        if action == "resume":
            async with rt.session(org_id) as session:
                touched = await session.execute(
                    text(
                        "UPDATE exports SET updated_at = now() WHERE id = :id AND org_id = :org_id"
                        " AND (status = 'queued' OR (status = 'running' AND lease_expires_at <= now()))"
                    ),
                    {"id": export_id, "org_id": org_id},
                )
                if touched.rowcount:  # type: ignore[attr-defined]
                    run_export_job.enqueue(session, org_id, export_id)
                    report["resumed"] += 1
            continue
        async with rt.session(org_id) as session:
            if action == "expire":
                expired = await session.execute(
                    text(
                        "UPDATE exports SET status = 'expired', updated_at = now() WHERE id = :id AND org_id = :org_id"
                        " AND status = 'succeeded' AND expires_at <= now()"
                    ),
                    {"id": export_id, "org_id": org_id},
                )
                report["expired"] += expired.rowcount  # type: ignore[attr-defined]
            key = await session.scalar(
                text("SELECT object_key FROM exports WHERE id = :id AND org_id = :org_id AND status = 'expired'"),
                {"id": export_id, "org_id": org_id},
            )
        if not key:
            continue
        try:
            await storage.delete(key)
        except Exception:
            report["delete_failed"] += 1
            logger.warning("export %s: could not delete %s; the next sweep retries", export_id, key, exc_info=True)
            continue
        async with rt.session(org_id) as session:
            await session.execute(
                text(
                    "UPDATE exports SET object_key = NULL, updated_at = now() WHERE id = :id AND org_id = :org_id"
                    " AND status = 'expired'"
                ),
                {"id": export_id, "org_id": org_id},
            )
        report["deleted"] += 1
    return report
