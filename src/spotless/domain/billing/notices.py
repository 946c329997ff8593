"""What messaging tells of money: an invoice as a message shows it, a fresh pay link minted at send
time (the token lives only in the message being sent: its hash is stored, the token never is),
the invoice's PDF, and the sums a digest reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.ledger import open_cents
from spotless.domain.billing.links import mint
from spotless.domain.billing.models import Dispute, Invoice, InvoiceLink, LedgerEntry

# A link sent in a message lives this long (the invoice's own links page can revoke it).
MESSAGE_LINK_DAYS = 30
OPEN_STATUSES = ("issued", "partially_paid")


@dataclass(frozen=True)
class InvoiceNotice:
    id: UUID
    client_id: UUID
    kind: str
    status: str
    display_number: str | None
    currency: str
    total_cents: int
    open_cents: int
    due_on: date | None
    overdue: bool


async def invoice_notice(session: AsyncSession, invoice_id: UUID) -> InvoiceNotice | None:
    """The visible invoice as a message shows it; None when not visible."""
    invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id))
    if invoice is None:
        return None
    return InvoiceNotice(
        id=invoice.id,
        client_id=invoice.client_id,
        kind=invoice.kind,
        status=invoice.status,
        display_number=invoice.display_number,
        currency=invoice.currency,
        total_cents=invoice.total_cents,
        open_cents=open_cents(invoice),
        due_on=invoice.due_on,
        overdue=invoice.overdue,
    )


async def mint_message_link(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, now: datetime, days: int = MESSAGE_LINK_DAYS
) -> tuple[str, datetime]:
    """A new system link to the invoice (no creator), for the message being sent now. Returns the
    token (put it in the message only) and its expiry."""
    token, digest = mint()
    expires_at = now + timedelta(days=days)
    session.add(InvoiceLink(org_id=org_id, invoice_id=invoice_id, token_hash=digest, expires_at=expires_at))
    await session.flush()
    return token, expires_at


async def invoice_pdf(session: AsyncSession, invoice_id: UUID) -> tuple[bytes, str]:
    """The invoice's PDF and file name (as its download route serves it)."""
    # documents imports billing.public (which imports this module): bound on first use
    from spotless.domain.billing import documents

    return await documents.invoice_pdf(session, invoice_id)


@dataclass(frozen=True)
class DisputeNotice:
    amount_cents: int
    currency: str
    reason: str | None
    evidence_due_by: datetime | None
    display_number: str | None
    invoice_id: UUID


async def dispute_notice(session: AsyncSession, dispute_id: UUID) -> DisputeNotice | None:
    row = (
        await session.execute(
            select(
                Dispute.amount_cents,
                Dispute.reason,
                Dispute.evidence_due_by,
                Dispute.invoice_id,
                Invoice.display_number,
                Invoice.currency,
            )
            .join(Invoice, Invoice.id == Dispute.invoice_id)
            .where(Dispute.id == dispute_id)
        )
    ).first()
    if row is None:
        return None
    return DisputeNotice(
        amount_cents=row.amount_cents,
        currency=row.currency,
        reason=row.reason,
        evidence_due_by=row.evidence_due_by,
        display_number=row.display_number,
        invoice_id=row.invoice_id,
    )


@dataclass(frozen=True)
class MoneyTotals:
    received_cents: int
    unpaid_count: int
    unpaid_cents: int


async def money_totals(session: AsyncSession, start: datetime, end: datetime) -> MoneyTotals:
    """Payments received in [start, end) (net of refunds), and the invoices still open now."""
    received = await session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.amount_cents).filter(LedgerEntry.kind == "payment"), 0),
            func.coalesce(func.sum(LedgerEntry.amount_cents).filter(LedgerEntry.kind == "refund"), 0),
        ).where(LedgerEntry.occurred_at >= start, LedgerEntry.occurred_at < end)
    )
    paid, refunded = received.one()
    unpaid = await session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(func.greatest(Invoice.total_cents - Invoice.paid_cents, 0)), 0),
        ).where(Invoice.kind == "invoice", Invoice.status.in_(OPEN_STATUSES))
    )
    count, owed = unpaid.one()
    return MoneyTotals(received_cents=int(paid) - abs(int(refunded)), unpaid_count=int(count), unpaid_cents=int(owed))
