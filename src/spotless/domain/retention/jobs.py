"""`retention.apply` (periodic): removes what is past retention.

Per organisation (listed by `retention_organisations`, 0022, then each worked on inside its own
organisation, so row-level security scopes every statement: one organisation's settings can never
reach another's rows): expired exports, and whatever other contexts register as a purger
(messaging's delivered message bodies, evidence's job photos: see `register_purger`). Then the
system tables, which have no organisation and one retention for everyone: sent outbox rows,
handled inbox events and the scheduler's old slot records (this job took over the former
`system.purge_outbox`, whose name stays an alias).

Every delete is batched (`LIMIT` with `FOR UPDATE SKIP LOCKED`, one short transaction per batch,
so a row another transaction holds is simply left for the next run) and idempotent: run twice,
the second run finds nothing. Counts go to the log and to `retention_rows_removed_total{kind}`.
Invoices and the ledger are never removed (accounting law)."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.retention.models import RetentionSettings
from spotless.domain.retention.settings import get_retention
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot
from spotless.settings import Settings

logger = logging.getLogger("spotless.retention")

APPLY_JOB = "retention.apply"
APPLY_ORG_JOB = "retention.apply_org"
ORG_PAGE = 200

REMOVED = Counter("retention_rows_removed_total", "Rows removed (or emptied) by retention", ["kind"])

# A purger removes one batch of its rows past the organisation's retention, in the session it is
# given (bound to that organisation), and answers how many; it is called until it answers 0.
Purger = Callable[[AsyncSession, UUID, RetentionSettings, int], Awaitable[int]]
_PURGERS: dict[str, Purger] = {}


def register_purger(kind: str, purger: Purger) -> None:
    """The hook for contexts whose tables retention covers (messaging's delivered bodies under
    `message_bodies` with `message_body_days`, field photos under `photos` with `photo_days`)."""
    _PURGERS[kind] = purger


def _every(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.retention.interval_seconds)


@job(
    APPLY_JOB,
    every=_every,
    max_retries=3,
    time_limit_ms=60 * 60_000,
    max_age_ms=6 * 3_600_000,
    # `system.purge_outbox` was the outbox's own hourly job before retention covered it.
    aliases=("retention-cleanup", "system.purge_outbox"),
)
async def apply_retention_job(slot: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, APPLY_JOB, slot) as mine:
        if not mine:
            return
        report = await apply_retention(rt)
        logger.info("retention: %s", report)


async def purge_exports(session: AsyncSession, org_id: UUID, policy: RetentionSettings, batch: int) -> int:
    # Only rows whose file is already gone (the exports sweep deletes it, retrying failures).
    result = await session.execute(
        text(
            "DELETE FROM exports WHERE id IN (SELECT id FROM exports WHERE org_id = :org_id"
            " AND status IN ('expired', 'failed') AND object_key IS NULL"
            " AND updated_at < now() - make_interval(days => :days)"
            " ORDER BY updated_at LIMIT :batch FOR UPDATE SKIP LOCKED)"
        ),
        {"org_id": org_id, "days": policy.export_days, "batch": batch},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


register_purger("exports", purge_exports)


async def apply_retention(rt: JobRuntime) -> dict[str, int]:
    batch = rt.settings.retention.batch_size
    report: Tally[str] = Tally()
    after: UUID | None = None
    while True:
        async with rt.session() as session:
            org_ids = list(
                (
                    await session.execute(
                        text("SELECT org_id FROM retention_organisations(:after, :limit)"),
                        {"after": after, "limit": ORG_PAGE},
                    )
                ).scalars()
            )
        for org_id in org_ids:
            report.update(await apply_for_org(rt, org_id, batch))
        if len(org_ids) < ORG_PAGE:
            break
        after = org_ids[-1]
    report.update(await purge_system_tables(rt, batch))
    for kind, count in report.items():
        REMOVED.labels(kind=kind).inc(count)
    return dict(report)


async def apply_for_org(rt: JobRuntime, org_id: UUID, batch: int) -> dict[str, int]:
    async with rt.session(org_id) as session:
        policy = await get_retention(session, org_id, rt.settings.retention)
        session.expunge_all()
    counts: dict[str, int] = {}
    for kind, purger in _PURGERS.items():
        counts[kind] = 0
        while True:
            async with rt.session(org_id) as session:
                removed = await purger(session, org_id, policy, batch)
            counts[kind] += removed
            if removed < batch:
                break
    return counts


_SYSTEM = {
    # Sent rows only: a pending or failing row is work still owed.
    "outbox": "DELETE FROM job_outbox WHERE id IN (SELECT id FROM job_outbox WHERE sent_at IS NOT NULL"
    " AND sent_at < now() - make_interval(days => :days) LIMIT :batch FOR UPDATE SKIP LOCKED)",
    # Handled events only: one still failing stays listed for replay.
    "inbox": "DELETE FROM inbox_events WHERE id IN (SELECT id FROM inbox_events WHERE handled_at IS NOT NULL"
    " AND handled_at < now() - make_interval(days => :days) LIMIT :batch FOR UPDATE SKIP LOCKED)",
    # A slot's record only needs to outlive the redeliveries of that slot.
    "scheduled_runs": "DELETE FROM scheduled_runs WHERE (job_name, slot) IN (SELECT job_name, slot"
    " FROM scheduled_runs WHERE slot < now() - make_interval(days => :days) LIMIT :batch FOR UPDATE SKIP LOCKED)",
}
SCHEDULED_RUNS_DAYS = 7


async def purge_system_tables(rt: JobRuntime, batch: int) -> dict[str, int]:
    days = {
        "outbox": rt.settings.retention.outbox_days,
        "inbox": rt.settings.retention.inbox_days,
        "scheduled_runs": SCHEDULED_RUNS_DAYS,
    }
    counts: dict[str, int] = {}
    for kind, statement in _SYSTEM.items():
        counts[kind] = 0
        while True:
            async with rt.session() as session:
                result = await session.execute(text(statement), {"days": days[kind], "batch": batch})
            removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
            counts[kind] += removed
            if removed < batch:
                break
    return counts


@job(APPLY_ORG_JOB, max_retries=3, time_limit_ms=30 * 60_000)
async def apply_org_retention_job(org_id: UUID) -> None:
    """One organisation's retention, asked for by its own admin (`POST /v1/admin/retention/cleanup`)."""
    rt = get_runtime()
    counts = await apply_for_org(rt, org_id, rt.settings.retention.batch_size)
    for kind, count in counts.items():
        REMOVED.labels(kind=kind).inc(count)
    logger.info("retention of organisation %s: %s", org_id, counts)
