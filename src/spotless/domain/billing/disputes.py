"""Disputes (chargebacks): a dispute flags its invoice, moves money in the ledger, tells the owner
when evidence is due, and settles when Stripe closes it.

Every `charge.dispute.*` event re-reads the dispute and applies its current state (`sync_dispute`),
so the five event types, in any order and any number of times, converge:
- the first sight of a dispute inserts its row (unique on the Stripe id), sets the invoice's
  `disputed` flag and emits `DisputeOpened` (with `evidence_due_by`); its subscriber
  `billing.notify_dispute_opened` tells the office through messaging;
- money follows the dispute's balance transactions, each kind posted once per dispute (ledger
  external id = the dispute id): the withdrawal (`dispute_withdrawal`) and Stripe's fee (`fee`)
  when funds were withdrawn, the reinstatement (`dispute_reinstatement`) when they came back, and
  Stripe's fee given back (`fee_reversal`) when the reinstating transaction returns it (a won
  dispute: its `fee` is negative). Where Stripe keeps the fee, nothing is reversed;
- a closing status (won, lost, warning_closed, ...) records the outcome and `closed_at` once,
  clears the invoice's flag and emits `DisputeClosed`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.audit.public import record_audit
from spotless.domain.billing import stripe_io
from spotless.domain.billing.events import DisputeClosed, DisputeOpened
from spotless.domain.billing.models import Dispute, Invoice
from spotless.domain.billing.public import Entry, post_entry
from spotless.domain.messaging.public import office_recipients, request_message
from spotless.lib.events import emit, subscriber
from spotless.lib.inbox import HandlerOutcome
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.query import cursor_page
from spotless.lib.schema import Output
from spotless.settings import Settings

logger = logging.getLogger("spotless.billing.disputes")

CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed", "charge_refunded", "prevented"})
SOURCE = "stripe"


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) and value else None


def movements(dispute: dict[str, Any]) -> tuple[int, int, int, int]:
    """(withdrawn, fee, reinstated, fee returned) in cents from the dispute's balance
    transactions. A transaction's `fee` is what Stripe took with it: positive on the withdrawal,
    negative on a reinstatement that gives the dispute fee back."""
    withdrawn = fee = reinstated = returned = 0
    for bt in dispute.get("balance_transactions") or []:
        if not isinstance(bt, dict):
            continue
        amount, bt_fee = int(bt.get("amount") or 0), int(bt.get("fee") or 0)
        if amount < 0:
            withdrawn += -amount
        elif amount > 0:
            reinstated += amount
        if bt_fee > 0:
            fee += bt_fee
        elif bt_fee < 0:
            returned += -bt_fee
    # Never more given back than was taken (a malformed object cannot mint money in the ledger).
    return withdrawn, fee, reinstated, min(returned, fee)


async def sync_dispute(
    session: AsyncSession, settings: Settings, org_id: UUID, account: str, dispute: dict[str, Any]
) -> HandlerOutcome:
    invoice_id = await stripe_io.invoice_of(settings, account, dispute)
    if invoice_id is None:
        return "ignored"
    invoice = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )
    if invoice is None:
        return "ignored"
    status = str(dispute.get("status") or "needs_response")
    due_by = _ts((dispute.get("evidence_details") or {}).get("due_by"))
    now = datetime.now(UTC)
    inserted = await session.scalar(
        insert(Dispute)
        .values(
            id=uuid7(),
            org_id=org_id,
            invoice_id=invoice.id,
            stripe_dispute_id=dispute["id"],
            status=status,
            reason=dispute.get("reason"),
            amount_cents=int(dispute.get("amount") or 0),
            evidence_due_by=due_by,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["stripe_dispute_id"])
        .returning(Dispute.id)
    )
    row = await session.scalar(
        select(Dispute).where(Dispute.stripe_dispute_id == dispute["id"]).execution_options(populate_existing=True)
    )
    assert row is not None
    if inserted is not None:
        await _flag(session, invoice, disputed=True)
        emit(session, DisputeOpened(org_id=org_id, invoice_id=invoice.id, dispute_id=row.id, evidence_due_by=due_by))
        record_audit(
            session,
            None,
            "billing.dispute.open",
            "invoice",
            invoice.id,
            after={"dispute_id": str(row.id), "amount_cents": row.amount_cents, "reason": row.reason},
            org_id=org_id,
        )
    else:
        row.status, row.reason, row.evidence_due_by = status, dispute.get("reason"), due_by or row.evidence_due_by
        row.amount_cents = int(dispute.get("amount") or row.amount_cents)
        row.updated_at = now

    withdrawn, fee, reinstated, fee_returned = movements(dispute)
    for kind, amount in (
        ("dispute_withdrawal", withdrawn),
        ("fee", fee),
        ("dispute_reinstatement", reinstated),
        ("fee_reversal", fee_returned),
    ):
        if amount <= 0:
            continue
        posted = await post_entry(
            session,
            Entry(
                org_id=org_id,
                client_id=invoice.client_id,
                invoice_id=invoice.id,
                kind=kind,
                amount_cents=amount,
                source=SOURCE,
                method="card",
                reference=dispute.get("charge") if isinstance(dispute.get("charge"), str) else None,
                external_id=dispute["id"],
            ),
        )
        if posted and kind == "fee_reversal":
            record_audit(
                session,
                None,
                "billing.dispute.fee_reversed",
                "invoice",
                invoice.id,
                after={"dispute_id": str(row.id), "amount_cents": amount},
                org_id=org_id,
            )

    if status in CLOSED_STATUSES and row.closed_at is None:
        row.outcome, row.closed_at = status, now
        await _flag(session, invoice, disputed=False)
        emit(session, DisputeClosed(org_id=org_id, invoice_id=invoice.id, dispute_id=row.id, outcome=status))
        record_audit(
            session,
            None,
            "billing.dispute.close",
            "invoice",
            invoice.id,
            after={"dispute_id": str(row.id), "outcome": status},
            org_id=org_id,
        )
    await session.flush()
    return "processed"


async def _flag(session: AsyncSession, invoice: Invoice, *, disputed: bool) -> None:
    await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id)
        .values(disputed=disputed, version=Invoice.version + 1)
        .execution_options(synchronize_session=False)
    )
    invoice.disputed = disputed


# Who in the office hears of a dispute (owners and admins hold every key).
DISPUTE_PERMISSION = "finance.manage"
DISPUTE_KIND = "office.dispute_opened"  # declared with its template in messaging.notifications


@subscriber(DisputeOpened, name="billing.notify_dispute_opened", max_retries=10, time_limit_ms=60_000)
async def notify_dispute_opened(event: DisputeOpened, event_id: str) -> None:
    """Tell the office a dispute was opened and by when evidence is due: one message per person
    holding finance.manage, requested once per dispute (a redelivery is a no-op)."""
    async with get_runtime().session(event.org_id) as session:
        for recipient in await office_recipients(session, event.org_id, DISPUTE_PERMISSION):
            await request_message(
                session,
                org_id=event.org_id,
                kind=DISPUTE_KIND,
                recipient=recipient,
                subject_type="dispute",
                subject_id=event.dispute_id,
                send_key="opened",
                params={"dispute_id": str(event.dispute_id), "invoice_id": str(event.invoice_id)},
            )
    logger.info("dispute %s on invoice %s: the office is told", event.dispute_id, event.invoice_id)


# --- reading -----------------------------------------------------------------------------------


class DisputeRead(Output):
    id: UUID
    invoice_id: UUID
    stripe_dispute_id: str
    status: str
    reason: str | None
    amount_cents: int
    evidence_due_by: datetime | None
    outcome: str | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> DisputeRead:
        return cls(**{f: getattr(row, f) for f in cls.__struct_fields__})


DISPUTE_ORDER: Keyset[Any] = Keyset(
    "disputes", [Dispute.created_at, Dispute.id], [datetime, UUID], descending=True, key=lambda d: (d.created_at, d.id)
)


async def list_disputes(
    session: AsyncSession, *, state: str | None, invoice_id: UUID | None, limit: int, cursor: str | None
) -> CursorPage[DisputeRead]:
    columns = [getattr(Dispute, f) for f in DisputeRead.__struct_fields__]
    stmt = select(*columns)
    if state == "open":
        stmt = stmt.where(Dispute.closed_at.is_(None))
    elif state == "closed":
        stmt = stmt.where(Dispute.closed_at.is_not(None))
    if invoice_id is not None:
        stmt = stmt.where(Dispute.invoice_id == invoice_id)
    return await cursor_page(
        session, stmt, DISPUTE_ORDER, cursor=cursor, limit=limit, to=DisputeRead.from_row, scalars=False
    )


__all__ = ["CLOSED_STATUSES", "DisputeRead", "list_disputes", "movements", "notify_dispute_opened", "sync_dispute"]
