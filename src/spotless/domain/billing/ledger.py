"""The ledger rule: money moves only as append-only entries, and an invoice's `paid_cents`,
`refunded_cents` and payment status are derived from them here, nowhere else.

`post(session, entry)` in the caller's transaction:
1. locks the invoice row (`FOR UPDATE`): posts on one invoice run one after another;
2. inserts the entry, `ON CONFLICT DO NOTHING` on (org, source, kind, external_id): a Stripe object
   (or any keyed movement) posts once however many times, and however concurrently, it arrives;
3. recomputes the invoice's amounts from all its entries and derives its status, emitting
   `InvoicePaid` when it becomes paid.
It returns whether the entry was new (False: already posted, nothing changed).

A client's credit (overpayments kept as credit, credit notes beyond what their invoice owed) is
`credit_issued` less `credit_applied`. `apply_client_credit` spends it on an invoice (issuing
calls it, as Stripe applies a customer's balance to the next invoice it finalises): it locks the
client's `client_credit_accounts` row first, so concurrent spenders take turns and none spends
credit another already spent, applies at most what is left and what the invoice owes (never below
zero), so no credit is ever spent twice. `POST /v1/invoices/{id}/apply-credit` spends it on an
invoice issued before the credit arose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.billing.events import InvoicePaid
from spotless.domain.billing.models import LEDGER_KINDS, ClientCreditAccount, Invoice, LedgerEntry
from spotless.lib.events import emit

# Kinds that add to / take from what the client has paid on an invoice.
PAID_PLUS = ("payment", "credit_applied", "dispute_reinstatement")
PAID_MINUS = ("dispute_withdrawal",)
# Statuses the ledger never changes (an explicit decision of the office, or not yet billed).
FROZEN = frozenset({"draft", "void", "uncollectible"})


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One movement to post. `external_id` keys it: with one, it posts at most once per
    (source, kind); without, every post is a new entry."""

    org_id: UUID
    client_id: UUID
    kind: str
    amount_cents: int
    source: str
    invoice_id: UUID | None = None
    method: str | None = None
    reference: str | None = None
    external_id: str | None = None
    created_by: UUID | None = None
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in LEDGER_KINDS:
            raise ValueError(f"unknown ledger kind {self.kind!r}")
        if self.amount_cents <= 0:
            raise ValueError("a ledger amount is positive; its kind gives the direction")


def derive_status(current: str, *, total_cents: int, paid_cents: int, refunded_cents: int) -> str:
    """The status an invoice's amounts give it. Draft, void and uncollectible stay as they are.

    A refund never reduces what is owed (`open_cents` is the total less what was paid): an
    invoice with money still owed stays issued or partially paid, so it can still be paid, goes
    overdue and is followed up, whatever was refunded on it. The refunded statuses are for paid
    invoices whose money went (partly or wholly) back."""
    if current in FROZEN:
        return current
    fully_paid = paid_cents > 0 and paid_cents >= total_cents
    if refunded_cents > 0 and fully_paid:
        return "refunded" if refunded_cents >= paid_cents else "partially_refunded"
    if fully_paid:
        return "paid"
    if paid_cents > 0:
        return "partially_paid"
    return "issued"


def open_cents(invoice: Invoice) -> int:
    """What the client still owes on an invoice (never negative)."""
    if invoice.status in FROZEN:
        return 0
    return max(invoice.total_cents - invoice.paid_cents, 0)


async def post(session: AsyncSession, entry: Entry) -> bool:
    invoice: Invoice | None = None
    if entry.invoice_id is not None:
        invoice = await session.scalar(
            select(Invoice)
            .where(Invoice.id == entry.invoice_id, Invoice.org_id == entry.org_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if invoice is None:
            raise LookupError(f"invoice {entry.invoice_id} not found for the ledger entry")
    now = datetime.now(UTC)
    stmt = (
        insert(LedgerEntry)
        .values(
            id=uuid7(),
            org_id=entry.org_id,
            invoice_id=entry.invoice_id,
            client_id=entry.client_id,
            kind=entry.kind,
            amount_cents=entry.amount_cents,
            method=entry.method,
            reference=entry.reference,
            source=entry.source,
            external_id=entry.external_id,
            created_by=entry.created_by,
            occurred_at=entry.occurred_at or now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["org_id", "source", "kind", "external_id"])
        .returning(LedgerEntry.id)
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    if inserted is None:
        return False
    if invoice is not None:
        await _recompute(session, invoice)
    return True


async def _recompute(session: AsyncSession, invoice: Invoice) -> None:
    amount = LedgerEntry.amount_cents
    paid_expr = func.coalesce(
        func.sum(
            case(
                (LedgerEntry.kind.in_(PAID_PLUS), amount),
                (LedgerEntry.kind.in_(PAID_MINUS), -amount),
                else_=0,
            )
        ),
        0,
    )
    refunded_expr = func.coalesce(func.sum(case((LedgerEntry.kind == "refund", amount), else_=0)), 0)
    row = (
        await session.execute(
            select(paid_expr, refunded_expr).where(
                LedgerEntry.org_id == invoice.org_id, LedgerEntry.invoice_id == invoice.id
            )
        )
    ).one()
    paid, refunded = max(int(row[0]), 0), int(row[1])
    before = invoice.status
    status = derive_status(before, total_cents=invoice.total_cents, paid_cents=paid, refunded_cents=refunded)
    # Paid (or refunded) is no longer overdue; an open invoice keeps the daily job's mark.
    overdue = invoice.overdue and status in ("issued", "partially_paid")
    await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.org_id == invoice.org_id)
        .values(
            paid_cents=paid,
            refunded_cents=refunded,
            status=status,
            overdue=overdue,
            version=Invoice.version + 1,
            updated_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    invoice.paid_cents, invoice.refunded_cents, invoice.status, invoice.overdue = paid, refunded, status, overdue
    invoice.version += 1
    if status == "paid" and before != "paid":
        emit(session, InvoicePaid(org_id=invoice.org_id, invoice_id=invoice.id, client_id=invoice.client_id))


async def client_credit_cents(session: AsyncSession, org_id: UUID, client_id: UUID) -> int:
    """The client's unused credit: credit issued (overpayments, credit notes) less credit applied."""
    amount = LedgerEntry.amount_cents
    value = await session.scalar(
        select(
            func.coalesce(
                func.sum(
                    case(
                        (LedgerEntry.kind == "credit_issued", amount),
                        (LedgerEntry.kind == "credit_applied", -amount),
                        else_=0,
                    )
                ),
                0,
            )
        ).where(LedgerEntry.org_id == org_id, LedgerEntry.client_id == client_id)
    )
    return int(value or 0)


async def apply_client_credit(session: AsyncSession, invoice: Invoice) -> int:
    """Spend the client's credit on what the invoice owes; answers the cents applied (0 when
    there is no credit or nothing owed). The caller holds the invoice's row lock (issuing, the
    apply-credit route); the credit account's lock is taken after it, always in that order."""
    if invoice.kind != "invoice" or open_cents(invoice) <= 0:
        return 0
    now = datetime.now(UTC)
    await session.execute(
        insert(ClientCreditAccount)
        .values(org_id=invoice.org_id, client_id=invoice.client_id, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["org_id", "client_id"])
    )
    await session.execute(
        select(ClientCreditAccount.client_id)
        .where(ClientCreditAccount.org_id == invoice.org_id, ClientCreditAccount.client_id == invoice.client_id)
        .with_for_update()
    )
    # Read after the lock: what an earlier holder spent is committed and counted.
    available = await client_credit_cents(session, invoice.org_id, invoice.client_id)
    applied = min(available, open_cents(invoice))
    if applied <= 0:
        return 0
    # The n-th application to this invoice, counted under both locks: a key no other can take.
    earlier = await session.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(
            LedgerEntry.org_id == invoice.org_id,
            LedgerEntry.invoice_id == invoice.id,
            LedgerEntry.kind == "credit_applied",
            LedgerEntry.external_id.like(f"client-credit:{invoice.id}:%"),
        )
    )
    new = await post(
        session,
        Entry(
            org_id=invoice.org_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            kind="credit_applied",
            amount_cents=applied,
            method="credit",
            source="system",
            external_id=f"client-credit:{invoice.id}:{int(earlier or 0) + 1}",
        ),
    )
    return applied if new else 0
