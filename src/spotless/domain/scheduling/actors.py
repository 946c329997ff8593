"""scheduling.materialise_series: keep every active series booked up to the horizon.

Runs periodically, once per slot to completion (`exclusive_slot`: several schedulers or a
redelivery never run a done slot twice, and a failed run's retry really runs). The pass itself
(`materialise.materialise_all`) pages due series by id, expands each in its own organisation's RLS
scope and transaction, and records a series' failure on the series instead of stalling the rest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from spotless.domain.clients.events import ClientArchived
from spotless.domain.scheduling.client_closure import close_client_work
from spotless.domain.scheduling.materialise import materialise_all
from spotless.lib.events import subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

logger = logging.getLogger("spotless.scheduling")

JOB = "scheduling.materialise_series"


@job(
    JOB,
    every=lambda settings: timedelta(seconds=settings.scheduling.materialise_interval_seconds),
    max_retries=3,
    time_limit_ms=15 * 60_000,
    max_age_ms=6 * 3_600_000,
)
async def materialise_series(slot: str | None = None, now: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        totals = await materialise_all(rt, rt.settings.scheduling.horizon_days, moment)
        logger.info(
            "materialised %d due series: %d booking(s), %d conflict(s), %d failure(s)",
            totals.series,
            totals.bookings,
            totals.conflicts,
            totals.failures,
        )


@subscriber(ClientArchived, name="scheduling.close_client_work", max_retries=10, time_limit_ms=120_000)
async def close_archived_client_work(event: ClientArchived, event_id: str) -> None:
    """An archived client's open visits are cancelled and their series ended (client_closure)."""
    async with get_runtime().session(event.org_id) as session:
        cancelled = await close_client_work(session, event.org_id, event.client_id, event.archived_at)
    if cancelled:
        logger.info("closed %d open visit(s) of archived client %s", len(cancelled), event.client_id)
