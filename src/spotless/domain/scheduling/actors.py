"""scheduling.materialise_series: keep every active series booked up to the horizon.

Runs periodically, once per slot to completion (`exclusive_slot`: several schedulers or a
redelivery never run a done slot twice, and a failed run's retry really runs). The pass itself
(`materialise.materialise_all`) pages due series by id, expands each in its own organisation's RLS
scope and transaction, and records a series' failure on the series instead of stalling the rest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from spotless.domain.billing.events import PaymentHoldReleased, PaymentHoldRequested
from spotless.domain.billing.public import payment_hold_wanted
from spotless.domain.clients.events import ClientArchived
from spotless.domain.scheduling.client_closure import close_client_work
from spotless.domain.scheduling.materialise import materialise_all
from spotless.domain.scheduling.payment_holds import hold_client_visits, lock_client, release_client_visits
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


@subscriber(PaymentHoldRequested, name="scheduling.hold_client_visits", max_retries=10, time_limit_ms=120_000)
async def hold_debtor_visits(event: PaymentHoldRequested, event_id: str) -> None:
    """An unpaid invoice's follow-up reached the organisation's hold step: the client's visits not
    started yet stay in the schedule, marked, and no cleaner is sent (payment_holds)."""
    async with get_runtime().session(event.org_id) as session:
        # Under the client's hold lock, and only while billing still wants it: a release heard
        # before this request (the invoice paid meanwhile) is not undone by it.
        await lock_client(session, event.client_id)
        if not await payment_hold_wanted(session, event.invoice_id):
            return
        held = await hold_client_visits(session, event.org_id, event.client_id, event.invoice_id, "unpaid invoice")
    if held:
        logger.info("put %d visit(s) of client %s on payment hold", len(held), event.client_id)


@subscriber(PaymentHoldReleased, name="scheduling.release_client_visits", max_retries=10, time_limit_ms=120_000)
async def release_debtor_visits(event: PaymentHoldReleased, event_id: str) -> None:
    """The invoice behind a hold was settled (or its chase stopped): once no other invoice holds the
    client, their visits go back to the field."""
    async with get_runtime().session(event.org_id) as session:
        released = await release_client_visits(session, event.org_id, event.client_id, event.invoice_id)
    if released:
        logger.info("released %d visit(s) of client %s from payment hold", len(released), event.client_id)
