"""The periodic materialiser: every active series, in every organisation, booked up to the horizon.

Why it cannot stall:
- Due series are paged by id (a keyset), so each run visits every due series once, however many
  of them make no progress; a page never comes back.
- A series with nothing due still has its marker advanced (see `occurrences.materialise`), so it leaves
  the due set instead of being re-read every run.
- A series that fails (its service deactivated, pricing refused, any error) is rolled back to a
  savepoint, the failure is written on the series (`materialise_error`, `materialise_failed_at`,
  shown by GET /v1/series/{id}), counted in `series_materialise_failures_total{reason}`, and the
  series is left out of the due set for `RETRY_FAILED_AFTER`; the others carry on. Its marker does
  not move, so nothing is skipped: the next successful run books what is due and clears the error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.scheduling.context import org_context
from spotless.domain.scheduling.models import BookingSeries
from spotless.domain.scheduling.occurrences import horizon_end, materialise
from spotless.lib.jobs.runtime import JobRuntime
from spotless.lib.metrics import SERIES_MATERIALISE_FAILURES

logger = logging.getLogger("spotless.scheduling.materialise")

PAGE = 200
# A failed series is not retried on every run (a thousand broken series would cost a thousand
# transactions each time), only after this back-off.
RETRY_FAILED_AFTER = timedelta(hours=6)


@dataclass
class RunTotals:
    series: int = 0
    bookings: int = 0
    conflicts: int = 0
    failures: int = 0


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """A short stable reason (the problem's slug, for the metric label) and a detail to show."""
    problem_type = getattr(exc, "type_", None)
    if isinstance(problem_type, str) and problem_type:
        return problem_type.rsplit("/", 1)[-1], str(getattr(exc, "detail", "") or exc)
    return "error", type(exc).__name__


def due_horizon(moment: datetime, horizon_days: int) -> datetime:
    # A series is due when its marker is short of the nearest organisation's horizon: every zone's
    # "today" is at least UTC's minus one day. A series just materialised to its own (local)
    # horizon is therefore never due again the same day, and the far end of the calendar trails
    # the horizon by at most two days.
    return moment + timedelta(days=horizon_days - 1)


async def materialise_due(
    session: AsyncSession, org_id: UUID, series_id: UUID, horizon_days: int, moment: datetime
) -> tuple[int, int, str | None]:
    """Expand one series (in its organisation's scope). Returns (bookings, conflicts, failure reason)."""
    found = await session.scalar(
        # A series being edited right now is skipped: it stays due and the next run takes it.
        select(BookingSeries).where(BookingSeries.id == series_id).with_for_update(skip_locked=True)
    )
    if found is None:
        return 0, 0, None
    ctx = await org_context(session, org_id)
    through = horizon_end(ctx, horizon_days, moment)
    try:
        async with session.begin_nested():
            result = await materialise(session, ctx, found, None, through, now=moment)
    except Exception as exc:
        reason, detail = failure_reason(exc)
        # The savepoint's rollback expired the ORM object: record through a plain UPDATE.
        await session.execute(
            update(BookingSeries)
            .where(BookingSeries.id == series_id)
            .values(materialise_error=f"{reason}: {detail}"[:2000], materialise_failed_at=moment)
            .execution_options(synchronize_session=False)
        )
        SERIES_MATERIALISE_FAILURES.labels(reason=reason).inc()
        logger.warning(
            "series %s (organisation %s) could not be materialised: %s: %s",
            series_id,
            org_id,
            reason,
            detail,
            exc_info=reason == "error",
        )
        return 0, 0, reason
    if found.materialise_error is not None or found.materialise_failed_at is not None:
        found.materialise_error = None
        found.materialise_failed_at = None
        await session.flush()
    if result.conflicts:
        logger.info("series %s: %d occurrence(s) reported as conflicts", series_id, len(result.conflicts))
    return len(result.booking_ids), len(result.conflicts), None


async def due_page(
    session: AsyncSession, moment: datetime, horizon_days: int, after: UUID | None, limit: int = PAGE
) -> list[tuple[UUID, UUID]]:
    """(org_id, series_id) of due series with ids after `after`, across organisations."""
    rows = await session.execute(
        text("SELECT org_id, series_id FROM scheduling_due_series(:horizon, :retry_before, :after, :limit)"),
        {
            "horizon": due_horizon(moment, horizon_days).date(),
            "retry_before": moment - RETRY_FAILED_AFTER,
            "after": after,
            "limit": limit,
        },
    )
    return [(org_id, series_id) for org_id, series_id in rows]


async def materialise_all(rt: JobRuntime, horizon_days: int, moment: datetime | None = None) -> RunTotals:
    """One pass over every due series. A failure of one series never stops the pass; a failure to
    read the due set propagates (the run is then marked failed and retried)."""
    moment = moment or datetime.now(UTC)
    totals = RunTotals()
    after: UUID | None = None
    while True:
        async with rt.session() as session:
            page = await due_page(session, moment, horizon_days, after)
        for org_id, series_id in page:
            totals.series += 1
            try:
                async with rt.session(org_id=org_id) as session:
                    booked, conflicts, failed = await materialise_due(session, org_id, series_id, horizon_days, moment)
            except Exception:
                # Outside the savepoint (lost connection, lock timeout ...): nothing recorded on
                # the series, which stays due for the next run.
                SERIES_MATERIALISE_FAILURES.labels(reason="error").inc()
                logger.exception("could not materialise series %s (organisation %s)", series_id, org_id)
                totals.failures += 1
                continue
            totals.bookings += booked
            totals.conflicts += conflicts
            totals.failures += failed is not None
        if len(page) < PAGE:
            return totals
        after = page[-1][1]
