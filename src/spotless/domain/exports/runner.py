"""Running one export, safely under redelivery and crashes.

1. Claim: one UPDATE moves the row to `running` under a lease (`lease_owner`, `lease_expires_at`),
   only from `queued` or from `running` whose lease has lapsed (its worker died). A second
   delivery of a running or finished export claims nothing and returns: the job is idempotent.
2. Stream: rows are read from a server-side cursor and written as chunks straight into storage
   (multipart for S3); every EXPORT_PROGRESS_BATCH_ROWS rows the progress is committed and the
   lease renewed, in a short transaction of its own so pollers see it. A renewal that finds the
   lease taken stops this run without touching the row (the taker finishes it).
3. Finish: the same key every attempt (`exports/<org>/<export>/<file>`), so a re-run overwrites its
   own object and an export never has two files; the row becomes `succeeded` only if this run
   still holds the lease.
4. Failure: the row goes back to `queued` with the reason and the error is raised for Dramatiq's
   retry; after EXPORT_MAX_ATTEMPTS it is dead-lettered: `failed`, with the reason and `dead_at`,
   counted by the DLQ endpoint and replayable from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.exports.files import RowCounter, file_chunks, total_rows
from spotless.domain.exports.sources import Period
from spotless.lib.jobs.runtime import JobRuntime
from spotless.lib.storage import Storage, build_storage

logger = logging.getLogger("spotless.exports")


class LeaseLost(RuntimeError):
    """Another worker took this export over: this run stops and leaves the row to it."""


@dataclass(frozen=True)
class Claimed:
    org_id: UUID
    id: UUID
    kind: str
    period: Period
    subject_id: UUID | None
    filename: str
    content_type: str
    attempts: int


def object_key(org_id: UUID, export_id: UUID, filename: str) -> str:
    return f"exports/{org_id}/{export_id}/{filename}"


_CLAIM = text(
    """
    UPDATE exports SET status = 'running', lease_owner = :owner,
           lease_expires_at = now() + make_interval(secs => :lease), attempts = attempts + 1,
           progress_done = 0, started_at = now(), updated_at = now()
    WHERE id = :id AND org_id = :org_id
      AND (status = 'queued' OR (status = 'running' AND lease_expires_at <= now()))
    RETURNING kind, period_from, period_to, subject_id, filename, content_type, attempts
    """
)
_PROGRESS = text(
    """
    UPDATE exports SET progress_done = :done, progress_total = GREATEST(COALESCE(progress_total, 0), :done),
           lease_expires_at = now() + make_interval(secs => :lease), updated_at = now()
    WHERE id = :id AND org_id = :org_id AND status = 'running' AND lease_owner = :owner
    """
)
_TOTAL = text(
    """
    UPDATE exports SET progress_total = :total, updated_at = now()
    WHERE id = :id AND org_id = :org_id AND status = 'running' AND lease_owner = :owner
    """
)
_SUCCEED = text(
    """
    UPDATE exports SET status = 'succeeded', object_key = :key, size_bytes = :size, progress_done = :done,
           progress_total = :done, finished_at = now(), expires_at = now() + make_interval(hours => :ttl),
           lease_owner = NULL, lease_expires_at = NULL, error = NULL, updated_at = now()
    WHERE id = :id AND org_id = :org_id AND status = 'running' AND lease_owner = :owner
    """
)
_FAIL = text(
    """
    UPDATE exports SET status = CASE WHEN :dead THEN 'failed' ELSE 'queued' END, error = :error,
           dead_at = CASE WHEN :dead THEN now() END, finished_at = CASE WHEN :dead THEN now() END,
           lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id = :id AND org_id = :org_id AND status = 'running' AND lease_owner = :owner
    """
)


async def claim(session: AsyncSession, org_id: UUID, export_id: UUID, owner: str, lease: int) -> Claimed | None:
    row = (await session.execute(_CLAIM, {"id": export_id, "org_id": org_id, "owner": owner, "lease": lease})).first()
    if row is None:
        return None
    return Claimed(
        org_id=org_id,
        id=export_id,
        kind=row.kind,
        period=Period(row.period_from, row.period_to),
        subject_id=row.subject_id,
        filename=row.filename,
        content_type=row.content_type,
        attempts=row.attempts,
    )


def _reason(exc: BaseException) -> str:
    # The class and message only (no traceback, no arguments): shown to the organisation's admins.
    return f"{type(exc).__name__}: {exc}"[:500]


async def run_export(
    rt: JobRuntime, org_id: UUID, export_id: UUID, *, owner: str | None = None, storage: Storage | None = None
) -> str:
    """Run the export if it is ours to run; returns what happened (for logs and tests)."""
    settings = rt.settings.exports
    owner = owner or rt.runner_id
    async with rt.session(org_id) as session:
        claimed = await claim(session, org_id, export_id, owner, settings.lease_seconds)
    if claimed is None:
        return "not-claimed"
    ids = {"id": export_id, "org_id": org_id, "owner": owner}

    async def progress(done: int) -> None:
        async with rt.session(org_id) as session:
            renewed = await session.execute(_PROGRESS, {**ids, "done": done, "lease": settings.lease_seconds})
        if not renewed.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(f"export {export_id} was taken over")

    counter = RowCounter(progress, settings.progress_batch_rows)
    key = object_key(org_id, export_id, claimed.filename)
    try:
        storage = storage or build_storage(rt.settings)
        async with rt.session(org_id) as reading:
            total = await total_rows(reading, claimed.kind, org_id, claimed.period, claimed.subject_id)
            async with rt.session(org_id) as session:
                await session.execute(_TOTAL, {**ids, "total": total})
            chunks = file_chunks(reading, claimed.kind, org_id, claimed.period, counter, claimed.subject_id)
            size = await storage.put_stream(key, chunks, content_type=claimed.content_type)
        async with rt.session(org_id) as session:
            done = await session.execute(
                _SUCCEED, {**ids, "key": key, "size": size, "done": counter.done, "ttl": settings.ttl_hours}
            )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(f"export {export_id} was taken over")
    except LeaseLost:
        logger.warning("export %s: lease lost, left to the worker that took it over", export_id)
        return "lease-lost"
    except Exception as exc:
        dead = claimed.attempts >= settings.max_attempts
        async with rt.session(org_id) as session:
            await session.execute(_FAIL, {**ids, "dead": dead, "error": _reason(exc)})
        if dead:
            logger.error("export %s dead-lettered after %d attempt(s): %s", export_id, claimed.attempts, _reason(exc))
            return "dead"
        raise
    logger.info("export %s: %d row(s), %d byte(s)", export_id, counter.done, size)
    return "succeeded"
