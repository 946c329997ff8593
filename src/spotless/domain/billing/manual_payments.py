"""Payments staff record by hand: e-transfer, cash or cheque, with a reference.

More than the invoice still owes is refused (409 payment-exceeds-open-amount) unless the caller
says `keep_as_credit`: then the invoice is paid in full and the excess is the client's credit (a
`credit_issued` ledger entry), never silently lost. `apply_credit` spends the client's credit on
an invoice that was already open when the credit arose (issuing applies it to new invoices)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.events import PaymentRecorded
from spotless.domain.billing.invoices import invoice_read, locked
from spotless.domain.billing.ledger import Entry, apply_client_credit, client_credit_cents, open_cents, post
from spotless.domain.billing.schemas import PaymentCreate, PaymentRead
from spotless.domain.identity.public import Principal
from spotless.lib.errors import FieldError, Problem
from spotless.lib.events import emit

PAYABLE = ("issued", "partially_paid")


def _not_payable(invoice: Any) -> Problem:
    return Problem(
        409,
        "invoice-not-payable",
        "The invoice is not open for payment",
        f"Invoice {invoice.display_number or invoice.id} is {invoice.status}: payments are recorded against an "
        "issued invoice that still has an amount open.",
        invoice_status=invoice.status,
    )


async def apply_credit(session: AsyncSession, principal: Principal, invoice_id: UUID) -> PaymentRead:
    """The client's credit pays what the invoice owes, as far as it goes (409 no-client-credit
    when there is none). The invoice is locked first, then the client's credit account."""
    invoice = await locked(session, invoice_id)
    if invoice.kind != "invoice" or invoice.status not in PAYABLE:
        raise _not_payable(invoice)
    applied = await apply_client_credit(session, invoice)
    if applied == 0:
        raise Problem(
            409,
            "no-client-credit",
            "The client has no credit",
            "The client has no unused credit (overpayment kept or credit note) to apply to this invoice.",
        )
    record_audit(session, principal, "payment.apply_credit", "invoice", invoice.id, after={"applied_cents": applied})
    return PaymentRead(
        invoice=await invoice_read(session, invoice.id, invoice),
        applied_cents=applied,
        credited_cents=0,
        client_credit_cents=await client_credit_cents(session, invoice.org_id, invoice.client_id),
    )


async def record_payment(
    session: AsyncSession, principal: Principal, invoice_id: UUID, data: PaymentCreate
) -> PaymentRead:
    invoice = await locked(session, invoice_id)
    if invoice.kind != "invoice" or invoice.status not in PAYABLE:
        raise _not_payable(invoice)
    now = datetime.now(UTC)
    received = data.received_at or now
    if received > now:
        raise FieldError("received_at", "a payment cannot be received in the future")
    owed = open_cents(invoice)
    if data.amount_cents > owed and not data.keep_as_credit:
        raise Problem(
            409,
            "payment-exceeds-open-amount",
            "The payment is more than the invoice's open amount",
            f"The invoice has {owed} open; send keep_as_credit=true to keep the excess as the client's credit.",
            open_cents=owed,
        )
    applied = min(data.amount_cents, owed)
    excess = data.amount_cents - applied
    common = {
        "org_id": invoice.org_id,
        "client_id": invoice.client_id,
        "invoice_id": invoice.id,
        "method": data.method,
        "reference": data.reference,
        "source": "manual",
        "created_by": principal.user_id,
        "occurred_at": received,
    }
    if applied > 0:
        await post(session, Entry(kind="payment", amount_cents=applied, **common))  # type: ignore[arg-type]
    if excess > 0:
        await post(session, Entry(kind="credit_issued", amount_cents=excess, **common))  # type: ignore[arg-type]
    emit(
        session,
        PaymentRecorded(
            org_id=invoice.org_id,
            invoice_id=invoice.id,
            client_id=invoice.client_id,
            amount_cents=data.amount_cents,
            method=data.method,
        ),
    )
    record_audit(
        session,
        principal,
        "payment.record",
        "invoice",
        invoice.id,
        after={"amount_cents": data.amount_cents, "applied_cents": applied, "credited_cents": excess},
        meta={"method": data.method, "reference": data.reference},
    )
    return PaymentRead(
        invoice=await invoice_read(session, invoice.id, invoice),
        applied_cents=applied,
        credited_cents=excess,
        client_credit_cents=await client_credit_cents(session, invoice.org_id, invoice.client_id),
    )
