"""Issuing an invoice (number, snapshots, taxes, due date), voiding it, writing it off, and
credit notes against it. Issued invoices are never deleted: they are voided (nothing paid) or
credited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.events import InvoiceIssued, InvoiceVoided
from spotless.domain.billing.followup import resolve_followup
from spotless.domain.billing.invoices import LineSpec, free_lines, lines_of, locked, not_draft
from spotless.domain.billing.ledger import Entry, apply_client_credit, open_cents, post
from spotless.domain.billing.models import Invoice, InvoicedBooking, InvoiceLine
from spotless.domain.billing.numbering import CREDIT_NOTE_SERIES, display_number, take_number
from spotless.domain.billing.schemas import CreditNoteCreate
from spotless.domain.billing.settings import get_settings
from spotless.domain.billing.taxes import Rate, TaxLine, describe, normalise_region, rates_for, tax_lines
from spotless.domain.clients.public import billing_contact
from spotless.domain.identity.public import Principal
from spotless.lib.errors import FieldError, Problem
from spotless.lib.events import emit

OPEN = ("issued", "partially_paid")


def _add_tax_lines(session: AsyncSession, invoice: Invoice, taxes: list[TaxLine], start: int) -> None:
    for position, tax in enumerate(taxes, start=start):
        session.add(
            InvoiceLine(
                org_id=invoice.org_id,
                invoice_id=invoice.id,
                position=position,
                kind="tax",
                description=describe(tax),
                unit_cents=tax.amount_cents,
                amount_cents=tax.amount_cents,
                tax_name=tax.name,
                tax_rate=tax.rate,
                tax_rate_id=tax.rate_id,
            )
        )


def _registration(settings: Any) -> dict[str, str] | None:
    numbers = {
        "gst_hst_number": settings.gst_hst_number,
        "qst_number": settings.qst_number,
        "pst_number": settings.pst_number,
    }
    kept = {k: v for k, v in numbers.items() if v}
    return kept or None


async def issue(
    session: AsyncSession, actor: Principal | None, org_id: UUID, tz: ZoneInfo, invoice_id: UUID
) -> Invoice:
    """draft -> issued: the next number of the year's series, the client and registration
    snapshots, taxes by the service address's province (else the organisation's tax region) in
    force today, and the due date. Refuses an empty or zero invoice (409)."""
    invoice = await locked(session, invoice_id)
    if invoice.status != "draft":
        raise not_draft(invoice)
    lines = [line for line in await lines_of(session, invoice.id) if line.kind != "tax"]
    if not lines:
        raise Problem(409, "invoice-empty", "The invoice has no lines", "Add a line before issuing the invoice.")
    subtotal = sum(line.amount_cents for line in lines)
    if subtotal <= 0:
        raise Problem(
            409, "invoice-zero", "The invoice is for nothing", "An invoice whose total is zero or less is not issued."
        )
    settings = await get_settings(session, org_id)
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    region = normalise_region((invoice.billing_address or {}).get("region")) or normalise_region(settings.tax_region)
    taxes = tax_lines([line.amount_cents for line in lines], await rates_for(session, region, today)) if region else []
    await session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "tax"))
    _add_tax_lines(session, invoice, taxes, start=max(line.position for line in lines) + 1)

    contact = await billing_contact(session, invoice.client_id)
    if contact is not None:
        invoice.client_name, invoice.client_email = contact.name, contact.email
        invoice.billing_address = invoice.billing_address or contact.address
    series = str(today.year)
    invoice.series = series
    invoice.number = await take_number(session, org_id, series)
    invoice.display_number = display_number(settings.number_prefix, series, invoice.number)
    invoice.status = "issued"
    invoice.issued_at = now
    invoice.due_on = today + timedelta(days=settings.payment_terms_days)
    invoice.currency = settings.currency
    invoice.tax_region = region
    invoice.registration = _registration(settings)
    invoice.subtotal_cents = subtotal
    invoice.tax_cents = sum(t.amount_cents for t in taxes)
    invoice.total_cents = subtotal + invoice.tax_cents
    invoice.version += 1
    await session.flush()
    # Credit the client holds (an overpayment, a credit note) pays this invoice first.
    credit_applied = await apply_client_credit(session, invoice)
    emit(
        session,
        InvoiceIssued(
            org_id=org_id, invoice_id=invoice.id, client_id=invoice.client_id, total_cents=invoice.total_cents
        ),
    )
    record_audit(
        session,
        actor,
        "invoice.issue",
        "invoice",
        invoice.id,
        after={
            "number": invoice.display_number,
            "total_cents": invoice.total_cents,
            "tax_region": region,
            "credit_applied_cents": credit_applied,
        },
        org_id=org_id,
    )
    return invoice


async def void(session: AsyncSession, actor: Principal, invoice_id: UUID, reason: str) -> Invoice:
    """A draft, or an issued invoice with nothing paid, becomes void; its visits are freed."""
    invoice = await locked(session, invoice_id)
    voidable = invoice.kind == "invoice" and (
        invoice.status == "draft" or (invoice.status == "issued" and invoice.paid_cents == 0)
    )
    if not voidable:
        raise Problem(
            409,
            "invoice-not-voidable",
            "The invoice cannot be voided",
            f"Invoice {invoice.display_number or invoice.id} is {invoice.status}: only a draft or an issued invoice "
            "with nothing paid is voided; issue a credit note (or refund) instead.",
            invoice_status=invoice.status,
        )
    before = invoice.status
    invoice.status = "void"
    invoice.voided_at = datetime.now(UTC)
    invoice.void_reason = reason
    invoice.overdue = False
    invoice.version += 1
    await session.execute(delete(InvoicedBooking).where(InvoicedBooking.invoice_id == invoice.id))
    await session.flush()
    emit(session, InvoiceVoided(org_id=invoice.org_id, invoice_id=invoice.id))
    record_audit(
        session, actor, "invoice.void", "invoice", invoice.id, before={"status": before}, after={"status": "void"},
        meta={"reason": reason},
    )  # fmt: skip
    return invoice


async def mark_uncollectible(session: AsyncSession, actor: Principal, invoice_id: UUID, reason: str | None) -> Invoice:
    invoice = await locked(session, invoice_id)
    if invoice.kind != "invoice" or invoice.status not in OPEN:
        raise Problem(
            409,
            "invoice-not-open",
            "The invoice is not open",
            f"Invoice {invoice.display_number or invoice.id} is {invoice.status}: only an unpaid or partly paid "
            "invoice is written off.",
            invoice_status=invoice.status,
        )
    before = invoice.status
    invoice.status = "uncollectible"
    invoice.overdue = False
    invoice.version += 1
    await session.flush()
    # Written off: the chase ends now (no further step, visits released), not at the next due step.
    await resolve_followup(session, invoice.org_id, invoice.id, "uncollectible")
    record_audit(
        session, actor, "invoice.uncollectible", "invoice", invoice.id, before={"status": before},
        after={"status": "uncollectible"}, meta={"reason": reason},
    )  # fmt: skip
    return invoice


async def credited_cents(session: AsyncSession, invoice_id: UUID) -> int:
    value = await session.scalar(
        select(func.coalesce(func.sum(Invoice.total_cents), 0)).where(
            Invoice.credit_for_id == invoice_id, Invoice.kind == "credit_note", Invoice.status != "void"
        )
    )
    return int(value or 0)


async def credit_note(
    session: AsyncSession, actor: Principal, tz: ZoneInfo, invoice_id: UUID, data: CreditNoteCreate
) -> Invoice:
    """A credit note against an issued invoice: its own CN number, the invoice's tax rates, never
    more than the invoice's total less earlier credit notes. Its amount is the client's credit,
    applied at once to what the invoice still owes (the rest stays as credit)."""
    original = await locked(session, invoice_id)
    if original.kind != "invoice" or original.status in ("draft", "void"):
        raise Problem(
            409,
            "invoice-not-issued",
            "The invoice is not issued",
            "A credit note is written against an issued invoice (a draft is edited, a void one is closed).",
            invoice_status=original.status,
        )
    specs: list[LineSpec] = free_lines(data.lines)
    for i, spec in enumerate(specs):
        if spec.amount_cents <= 0:
            raise FieldError(f"lines[{i}].unit_cents", "a credit note line credits a positive amount")
    rates = [
        Rate(id=line.tax_rate_id, region=original.tax_region or "", name=line.tax_name, rate=line.tax_rate)
        for line in await lines_of(session, original.id)
        if line.kind == "tax" and line.tax_rate is not None and line.tax_rate_id is not None and line.tax_name
    ]
    taxes = tax_lines([s.amount_cents for s in specs], rates)
    subtotal = sum(s.amount_cents for s in specs)
    total = subtotal + sum(t.amount_cents for t in taxes)
    remaining = original.total_cents - await credited_cents(session, original.id)
    if total > remaining:
        raise Problem(
            409,
            "credit-exceeds-invoice",
            "The credit is more than the invoice",
            f"At most {remaining} can still be credited on this invoice; this credit note is {total}.",
            remaining_cents=remaining,
        )
    settings = await get_settings(session, original.org_id)
    now = datetime.now(UTC)
    number = await take_number(session, original.org_id, CREDIT_NOTE_SERIES)
    note = Invoice(
        org_id=original.org_id,
        client_id=original.client_id,
        kind="credit_note",
        credit_for_id=original.id,
        series=CREDIT_NOTE_SERIES,
        number=number,
        display_number=display_number(settings.number_prefix, CREDIT_NOTE_SERIES, number),
        status="issued",
        currency=original.currency,
        issued_at=now,
        tax_region=original.tax_region,
        client_name=original.client_name,
        client_email=original.client_email,
        billing_address=original.billing_address,
        registration=original.registration,
        notes=data.reason,
        subtotal_cents=subtotal,
        tax_cents=total - subtotal,
        total_cents=total,
        created_by=actor.user_id,
    )
    session.add(note)
    await session.flush()
    for position, spec in enumerate(specs, start=1):
        session.add(
            InvoiceLine(
                org_id=note.org_id,
                invoice_id=note.id,
                position=position,
                kind=spec.kind,
                description=spec.description,
                quantity=spec.quantity,
                unit_cents=spec.unit_cents,
                amount_cents=spec.amount_cents,
            )
        )
    _add_tax_lines(session, note, taxes, start=len(specs) + 1)
    await session.flush()
    key = f"credit-note:{note.id}"
    common: dict[str, Any] = {
        "org_id": note.org_id,
        "client_id": note.client_id,
        "source": "system",
        "external_id": key,
    }
    await post(session, Entry(kind="credit_issued", amount_cents=total, invoice_id=note.id, **common))
    # What the client never paid absorbs the credit first; only the rest is the client's to spend.
    # A written-off invoice's unpaid part counts too (else crediting it would mint spendable credit).
    unpaid = original.total_cents - original.paid_cents if original.status == "uncollectible" else open_cents(original)
    applied = min(total, max(unpaid, 0))
    if applied > 0:
        await post(
            session,
            Entry(kind="credit_applied", amount_cents=applied, invoice_id=original.id, method="credit", **common),
        )
    record_audit(
        session, actor, "invoice.credit_note", "invoice", original.id,
        after={"credit_note_id": note.id, "number": note.display_number, "total_cents": total, "applied_cents": applied},
        meta={"reason": data.reason},
    )  # fmt: skip
    return note
