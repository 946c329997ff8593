"""Automatic charges of saved cards (billing_settings.auto_charge).

- `billing.charge_invoice(org_id, invoice_id, attempt=1)`: the typed job that charges the client's
  saved card for what is open on the invoice (`cards.charge_saved_card`). A Stripe outage raises
  and the job retries with the same idempotency key (Stripe charges once); a decline emits
  `PaymentFailed` (the follow-up schedule starts from it) and does not retry: a new attempt is a
  new decision, with its own `attempt` number and key.
- `billing.auto_charge` hears `InvoiceIssued`: with `auto_charge = on_issue` every issued invoice
  is charged; with `on_completion` the invoices made from completed visits are (their visits are on
  `invoiced_bookings`). Only when the client has an active saved card.
"""

from __future__ import annotations

import logging
from uuid import UUID

from sqlalchemy import exists, select

from spotless.domain.billing.cards import active_payment_method, charge_saved_card
from spotless.domain.billing.events import InvoiceIssued
from spotless.domain.billing.models import Invoice, InvoicedBooking
from spotless.domain.billing.settings import get_settings
from spotless.lib.events import subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime

logger = logging.getLogger("spotless.billing.charging")


@job(
    "billing.charge_invoice",
    queue="default",
    max_retries=8,
    min_backoff_ms=30_000,
    max_backoff_ms=30 * 60_000,
    time_limit_ms=120_000,
    max_age_ms=3 * 24 * 3_600_000,
)
async def charge_invoice(org_id: UUID, invoice_id: UUID, attempt: int = 1) -> None:
    rt = get_runtime()
    async with rt.session(org_id) as session:
        invoice = await session.get(Invoice, invoice_id)
        if invoice is None:
            logger.info("charge of invoice %s skipped: not found", invoice_id)
            return
        outcome = await charge_saved_card(session, invoice, rt.settings.stripe, attempt=attempt)
    logger.info(
        "charge of invoice %s (attempt %d): %s",
        invoice_id,
        attempt,
        outcome.status,
        extra={"invoice_id": str(invoice_id), "outcome": outcome.status, "reason": outcome.reason},
    )


@subscriber(InvoiceIssued, name="billing.auto_charge", max_retries=10, time_limit_ms=60_000)
async def auto_charge(event: InvoiceIssued, event_id: str) -> None:
    async with get_runtime().session(event.org_id) as session:
        billing = await get_settings(session, event.org_id)
        if billing.auto_charge == "off":
            return
        if billing.auto_charge == "on_completion":
            from_visit = await session.scalar(select(exists().where(InvoicedBooking.invoice_id == event.invoice_id)))
            if not from_visit:
                return
        if await active_payment_method(session, event.client_id) is None:
            return
        charge_invoice.enqueue(session, event.org_id, event.invoice_id, attempt=1)
