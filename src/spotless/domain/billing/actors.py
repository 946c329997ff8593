"""Billing's jobs: invoice a completed visit ('per_visit'), invoice the period just ended
('per_period'), and mark invoices overdue. The periodic ones run hourly and act on each
organisation's own local date, so each happens once a day (or period) in that organisation's zone;
each organisation is its own transaction (one failing never stops the others)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import automation
from spotless.domain.scheduling.events import BookingCompleted
from spotless.lib.events import subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

logger = logging.getLogger("spotless.billing")

PERIOD_JOB = "billing.invoice_period"
OVERDUE_JOB = "billing.mark_overdue"
HOURLY = timedelta(hours=1)


@subscriber(BookingCompleted, name="billing.invoice_completed_visit", max_retries=10, time_limit_ms=120_000)
async def invoice_completed_visit(event: BookingCompleted, event_id: str) -> None:
    """In 'per_visit' mode the completed visit is invoiced and issued (once: a redelivery finds it billed)."""
    async with get_runtime().session(event.org_id) as session:
        invoice = await automation.invoice_visit(session, event.org_id, event.booking_id)
    if invoice is not None:
        logger.info("invoiced visit %s as %s", event.booking_id, invoice.display_number)


async def for_each_organisation(
    rt: JobRuntime, work: Callable[[AsyncSession, automation.BillingOrg], Awaitable[Any]]
) -> tuple[int, int]:
    """`work` for every organisation, each in its own scoped transaction. Returns (done, failed)."""
    done = failed = 0
    after: UUID | None = None
    while True:
        async with rt.session() as session:
            page = await automation.organisations_page(session, after)
        for org in page:
            try:
                async with rt.session(org_id=org.org_id) as session:
                    await work(session, org)
                done += 1
            except Exception:
                failed += 1
                logger.exception("billing run failed for organisation %s", org.org_id)
        if len(page) < automation.ORG_PAGE:
            return done, failed
        after = page[-1].org_id


@job(PERIOD_JOB, every=HOURLY, max_retries=3, time_limit_ms=30 * 60_000, max_age_ms=6 * 3_600_000)
async def invoice_period(slot: str | None = None, now: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, PERIOD_JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        done, failed = await for_each_organisation(rt, lambda s, org: automation.invoice_period(s, org, moment))
        logger.info("period invoicing: %d organisation(s), %d failed", done, failed)


@job(OVERDUE_JOB, every=HOURLY, max_retries=3, time_limit_ms=30 * 60_000, max_age_ms=6 * 3_600_000)
async def mark_overdue(slot: str | None = None, now: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, OVERDUE_JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        done, failed = await for_each_organisation(rt, lambda s, org: automation.mark_overdue(s, org, moment))
        logger.info("overdue marking: %d organisation(s), %d failed", done, failed)
