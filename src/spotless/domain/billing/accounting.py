"""What an accounting integration (QuickBooks Online) reads of billing: issued invoices with their
lines, and the money that moved for them (payments, refunds), as plain data in the caller's
session (bound to one organisation). Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.models import Invoice, InvoiceLine, LedgerEntry

# Invoices an accounting system keeps: issued once (drafts are not books), credit notes apart.
BOOKED = ("issued", "partially_paid", "paid", "partially_refunded", "refunded", "uncollectible", "void")
MOVEMENT_KINDS = ("payment", "refund")


@dataclass(frozen=True)
class LineFacts:
    description: str
    kind: str
    amount_cents: int


@dataclass(frozen=True)
class InvoiceFacts:
    id: UUID
    client_id: UUID
    display_number: str | None
    status: str
    currency: str
    issued_at: datetime | None
    due_on: date | None
    total_cents: int
    paid_cents: int
    refunded_cents: int
    version: int
    updated_at: datetime
    lines: tuple[LineFacts, ...]

    @property
    def open_cents(self) -> int:
        return max(self.total_cents - self.paid_cents, 0)


@dataclass(frozen=True)
class MovementFacts:
    id: UUID
    kind: str
    invoice_id: UUID | None
    client_id: UUID
    amount_cents: int
    method: str | None
    reference: str | None
    occurred_at: datetime
    created_at: datetime


async def _facts(session: AsyncSession, rows: list[Invoice]) -> list[InvoiceFacts]:
    if not rows:
        return []
    lines: dict[UUID, list[LineFacts]] = {r.id: [] for r in rows}
    found = await session.execute(
        select(InvoiceLine.invoice_id, InvoiceLine.description, InvoiceLine.kind, InvoiceLine.amount_cents)
        .where(InvoiceLine.invoice_id.in_(list(lines)))
        .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
    )
    for invoice_id, description, kind, amount in found:
        lines[invoice_id].append(LineFacts(description=description, kind=kind, amount_cents=int(amount)))
    return [
        InvoiceFacts(
            id=r.id,
            client_id=r.client_id,
            display_number=r.display_number,
            status=r.status,
            currency=r.currency,
            issued_at=r.issued_at,
            due_on=r.due_on,
            total_cents=int(r.total_cents),
            paid_cents=int(r.paid_cents),
            refunded_cents=int(r.refunded_cents),
            version=int(r.version),
            updated_at=r.updated_at,
            lines=tuple(lines[r.id]),
        )
        for r in rows
    ]


async def invoices_changed_since(session: AsyncSession, since: datetime, limit: int = 1_000) -> list[InvoiceFacts]:
    """Issued invoices (not credit notes) created or changed at or after `since`, oldest change first."""
    rows = (
        await session.scalars(
            select(Invoice)
            .where(Invoice.kind == "invoice", Invoice.status.in_(BOOKED), Invoice.updated_at >= since)
            .order_by(Invoice.updated_at, Invoice.id)
            .limit(limit)
        )
    ).all()
    return await _facts(session, list(rows))


async def invoices_by_id(session: AsyncSession, ids: list[UUID]) -> dict[UUID, InvoiceFacts]:
    if not ids:
        return {}
    rows = (await session.scalars(select(Invoice).where(Invoice.id.in_(ids)))).all()
    return {f.id: f for f in await _facts(session, list(rows))}


def _movement(r: LedgerEntry) -> MovementFacts:
    return MovementFacts(
        id=r.id,
        kind=r.kind,
        invoice_id=r.invoice_id,
        client_id=r.client_id,
        amount_cents=int(r.amount_cents),
        method=r.method,
        reference=r.reference,
        occurred_at=r.occurred_at,
        created_at=r.created_at,
    )


async def movements_since(session: AsyncSession, since: datetime, limit: int = 1_000) -> list[MovementFacts]:
    """Payments and refunds on invoices recorded at or after `since`, oldest first."""
    rows = (
        await session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.kind.in_(MOVEMENT_KINDS),
                LedgerEntry.invoice_id.is_not(None),
                LedgerEntry.created_at >= since,
            )
            .order_by(LedgerEntry.created_at, LedgerEntry.id)
            .limit(limit)
        )
    ).all()
    return [_movement(r) for r in rows]


async def movements_by_id(session: AsyncSession, ids: list[UUID]) -> dict[UUID, MovementFacts]:
    if not ids:
        return {}
    rows = (await session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(ids)))).all()
    return {r.id: _movement(r) for r in rows}
