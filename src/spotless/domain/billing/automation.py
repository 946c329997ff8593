"""Invoices nobody has to type: one per completed visit ('per_visit'), one per client for the
period just ended ('per_period', in the organisation's zone), and the daily overdue mark.

Each is idempotent: a visit is on at most one live invoice (`invoiced_bookings`), so a redelivered
event or a re-run finds nothing left to bill; an invoice is marked overdue (and announced) once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.events import InvoiceOverdue
from spotless.domain.billing.invoices import create_draft
from spotless.domain.billing.issuing import OPEN, issue
from spotless.domain.billing.models import Invoice, InvoicedBooking
from spotless.domain.billing.settings import get_settings
from spotless.domain.identity.public import org_profile
from spotless.domain.scheduling.public import BillableVisit, completed_visits_before, visits_by_id
from spotless.lib.errors import Problem
from spotless.lib.events import emit

logger = logging.getLogger("spotless.billing")
ORG_PAGE = 200


@dataclass(frozen=True)
class BillingOrg:
    org_id: UUID
    timezone: str
    invoicing_mode: str
    period: str


async def organisations_page(session: AsyncSession, after: UUID | None, limit: int = ORG_PAGE) -> list[BillingOrg]:
    """Every organisation with its zone and invoicing mode (across organisations: a definer function)."""
    rows = await session.execute(
        text("SELECT org_id, timezone, invoicing_mode, period FROM billing_organisations(:after, :limit)"),
        {"after": after, "limit": limit},
    )
    return [BillingOrg(r.org_id, r.timezone, r.invoicing_mode, r.period) for r in rows]


async def _bill(session: AsyncSession, org_id: UUID, tz: ZoneInfo, client_id: UUID, visits: Sequence[BillableVisit],
                period: tuple[date, date] | None = None) -> Invoice | None:  # fmt: skip
    """Draft and issue one invoice in a savepoint: a visit billed meanwhile, or an invoice for
    nothing, leaves no trace (and the rest of the run goes on)."""
    try:
        async with session.begin_nested():
            invoice = await create_draft(session, None, org_id, tz, client_id, visits=visits, period=period)
            return await issue(session, None, org_id, tz, invoice.id)
    except Problem as problem:
        logger.info("not invoicing %d visit(s) of client %s: %s", len(visits), client_id, problem.detail)
        return None


async def invoice_visit(session: AsyncSession, org_id: UUID, booking_id: UUID) -> Invoice | None:
    """'per_visit': the completed visit's own invoice, issued. Nothing in another mode, for a visit
    already invoiced, or one no longer completed."""
    settings = await get_settings(session, org_id)
    if settings.invoicing_mode != "per_visit":
        return None
    if await session.scalar(select(InvoicedBooking.invoice_id).where(InvoicedBooking.booking_id == booking_id)):
        return None
    visits = [v for v in await visits_by_id(session, [booking_id]) if v.status == "completed"]
    if not visits:
        return None
    tz = ZoneInfo((await org_profile(session, org_id)).timezone)
    return await _bill(session, org_id, tz, visits[0].client_id, visits)


def period_just_ended(period: str, today: date) -> tuple[date, date]:
    """(first day, last day) of the week (Monday to Sunday) or month before the one of `today`."""
    if period == "weekly":
        end = today - timedelta(days=today.weekday())
        return end - timedelta(days=7), end - timedelta(days=1)
    end = today.replace(day=1)
    return (end - timedelta(days=1)).replace(day=1), end - timedelta(days=1)


async def invoice_period(session: AsyncSession, org: BillingOrg, now: datetime) -> list[Invoice]:
    """'per_period': one invoice per client for the completed visits not yet invoiced that started
    before the end of the period just ended (a late straggler of an earlier period included)."""
    if org.invoicing_mode != "per_period":
        return []
    tz = ZoneInfo(org.timezone)
    start, last = period_just_ended(org.period, now.astimezone(tz).date())
    before = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    visits = await completed_visits_before(
        session,
        org.org_id,
        before,
        excluding=select(InvoicedBooking.booking_id).where(InvoicedBooking.org_id == org.org_id),
    )
    issued: list[Invoice] = []
    for client_id, group in groupby(visits, key=lambda v: v.client_id):
        invoice = await _bill(session, org.org_id, tz, client_id, list(group), period=(start, last))
        if invoice is not None:
            issued.append(invoice)
    return issued


async def mark_overdue(session: AsyncSession, org: BillingOrg, now: datetime) -> int:
    """Open invoices past their due date (the organisation's local date) become overdue, each
    announced once (`InvoiceOverdue`)."""
    today = now.astimezone(ZoneInfo(org.timezone)).date()
    rows = (
        await session.execute(
            update(Invoice)
            .where(
                Invoice.org_id == org.org_id,
                Invoice.kind == "invoice",
                Invoice.status.in_(OPEN),
                Invoice.overdue.is_(False),
                Invoice.due_on < today,
            )
            .values(overdue=True, updated_at=now)
            .returning(Invoice.id, Invoice.client_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for invoice_id, client_id in rows:
        emit(session, InvoiceOverdue(org_id=org.org_id, invoice_id=invoice_id, client_id=client_id))
        record_audit(
            session, None, "billing.invoice.overdue", "invoice", invoice_id, after={"overdue": True}, org_id=org.org_id
        )
    return len(rows)
