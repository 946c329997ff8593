"""scheduling.materialise_series: keep every active series booked up to the horizon.

Runs periodically (claimed per slot, so several schedulers never double-fire) and is idempotent
anyway: occurrences are unique per (series, date) and the materialiser skips dates already booked
or reported. Which series are due is read through `scheduling_due_series` (ids only, across
organisations); each series is then expanded in its own organisation's RLS scope and its own
transaction, so one broken series cannot hold up the others."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import text

from spotless.domain.scheduling import series as series_service
from spotless.domain.scheduling.context import org_context
from spotless.lib.jobs import job
from spotless.lib.jobs.registry import periodic
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import claim_run

logger = logging.getLogger("spotless.scheduling")

JOB = "scheduling.materialise_series"
BATCH = 200


async def materialise_one(org_id: UUID, series_id: UUID, horizon_days: int, now: datetime | None = None) -> int:
    """Expand one series in its organisation's scope; returns the number of bookings created."""
    rt = get_runtime()
    async with rt.session(org_id=org_id) as session:
        ctx = await org_context(session, org_id)
        found = await series_service.get_series(session, series_id, for_update=True)
        result = await series_service.materialise(
            session, ctx, found, None, series_service.horizon_end(ctx, horizon_days, now), now=now
        )
        if result.conflicts:
            logger.info("series %s: %d occurrence(s) reported as conflicts", series_id, len(result.conflicts))
        return len(result.booking_ids)


@job(JOB, max_retries=3, time_limit_ms=15 * 60_000, max_age_ms=6 * 3_600_000)
async def materialise_series(slot: str | None = None, now: str | None = None) -> None:
    rt = get_runtime()
    async with rt.session() as session:
        if not await claim_run(session, JOB, slot):
            return
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    horizon_days = rt.settings.scheduling.horizon_days
    # Every zone's "today" is within a day of UTC's: ask for anything short of the furthest horizon.
    horizon = (moment + timedelta(days=horizon_days + 1)).date()
    seen: set[UUID] = set()
    while True:
        async with rt.session() as session:
            rows = (
                await session.execute(
                    text("SELECT org_id, series_id FROM scheduling_due_series(:h, :n)"), {"h": horizon, "n": BATCH}
                )
            ).all()
        fresh = [(org_id, series_id) for org_id, series_id in rows if series_id not in seen]
        if not fresh:
            return
        by_org: dict[UUID, list[UUID]] = defaultdict(list)
        for org_id, series_id in fresh:
            seen.add(series_id)
            by_org[org_id].append(series_id)
        for org_id, ids in by_org.items():
            for series_id in ids:
                try:
                    await materialise_one(org_id, series_id, horizon_days, moment)
                except Exception:
                    # Logged and left due: the next run retries it; the others carry on.
                    logger.exception("could not materialise series %s", series_id)


def register_schedule(every_seconds: int) -> None:
    """The scheduler process calls this with SCHEDULING_MATERIALISE_INTERVAL_SECONDS."""
    periodic(JOB, every_seconds)
