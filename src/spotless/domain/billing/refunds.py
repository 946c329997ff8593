"""Refunds: full or partial, never more than was paid, final only when Stripe says succeeded.

Asking (`create_refund`, POST /v1/invoices/{id}/refunds) locks the invoice row first, so
concurrent requests on one invoice run one after another; each sees what the others asked:
    refundable = paid_cents - refunded_cents - (pending refunds)
An amount above it is refused (409 `refund-exceeds-paid`). Card payments are refunded at Stripe on
the PaymentIntent they came from (idempotency key from our refund id, or the caller's
Idempotency-Key so a retried request never refunds twice); payments recorded by hand are refunded
by hand (recorded at once, with the method and a reference).

A Stripe refund stays `pending` until Stripe says `succeeded` (then the ledger posts it, keyed by
the refund's id: once) or `failed` / `canceled` (nothing moves). The webhook side
(`sync_stripe_refund`, `sync_charge_refunds`) re-reads the refund and applies its current state; a
refund made in Stripe's dashboard is adopted (a row with no requester). It locks the invoice too, so
it waits for a refund request still talking to Stripe instead of racing it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.audit.public import record_audit
from spotless.domain.billing import stripe_io
from spotless.domain.billing.events import RefundSucceeded
from spotless.domain.billing.models import Invoice, LedgerEntry, Refund, StripeAccount
from spotless.domain.billing.public import Entry, post_entry
from spotless.domain.identity.public import Principal
from spotless.lib.errors import Problem, not_found
from spotless.lib.events import emit
from spotless.lib.inbox import HandlerOutcome
from spotless.settings import Settings

logger = logging.getLogger("spotless.billing.refunds")

RefundMethod = Literal["card", "etransfer", "cash", "cheque"]
MANUAL_METHODS = ("etransfer", "cash", "cheque")
FINAL = ("succeeded", "failed", "canceled")


async def _lock(session: AsyncSession, invoice_id: UUID) -> Invoice | None:
    return await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )


async def pending_cents(session: AsyncSession, invoice_id: UUID) -> int:
    value = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.invoice_id == invoice_id, Refund.status == "pending"
        )
    )
    return int(value or 0)


async def _card_room(session: AsyncSession, invoice_id: UUID) -> list[tuple[str, int]]:
    """Each card payment (PaymentIntent) of the invoice with what is left to refund on it."""
    payments = (
        await session.execute(
            select(LedgerEntry.external_id, LedgerEntry.amount_cents).where(
                LedgerEntry.invoice_id == invoice_id,
                LedgerEntry.kind == "payment",
                LedgerEntry.source == "stripe",
                LedgerEntry.external_id.is_not(None),
            )
        )
    ).all()
    if not payments:
        return []
    asked = dict(
        (
            await session.execute(
                select(Refund.payment_intent_id, func.sum(Refund.amount_cents))
                .where(Refund.invoice_id == invoice_id, Refund.status.in_(("pending", "succeeded")))
                .group_by(Refund.payment_intent_id)
            )
        ).all()
    )
    return [(str(pi), int(amount) - int(asked.get(pi) or 0)) for pi, amount in payments]


async def _manual_method(session: AsyncSession, invoice_id: UUID) -> str | None:
    return await session.scalar(
        select(LedgerEntry.method)
        .where(LedgerEntry.invoice_id == invoice_id, LedgerEntry.kind == "payment", LedgerEntry.source == "manual")
        .order_by(LedgerEntry.occurred_at.desc())
        .limit(1)
    )


def exceeds(refundable: int) -> Problem:
    return Problem(
        409,
        "refund-exceeds-paid",
        "The refund is more than what can be refunded",
        f"At most {max(refundable, 0)} cents can be refunded on this invoice now (paid, less refunded and pending).",
        refundable_cents=max(refundable, 0),
    )


async def create_refund(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    invoice_id: UUID,
    *,
    amount_cents: int,
    reason: str,
    method: RefundMethod | None,
    reference: str | None,
    idempotency_key: str | None,
) -> Refund:
    invoice = await _lock(session, invoice_id)
    if invoice is None:
        raise not_found("invoice")
    refundable = invoice.paid_cents - invoice.refunded_cents - await pending_cents(session, invoice.id)
    if amount_cents > refundable:
        raise exceeds(refundable)
    rooms = await _card_room(session, invoice.id) if method in (None, "card") else []
    if method is None:
        method = "card" if any(room > 0 for _, room in rooms) else None
        if method is None:
            manual = await _manual_method(session, invoice.id)
            method = manual if manual in MANUAL_METHODS else "cash"  # type: ignore[assignment]
    row = Refund(
        id=uuid7(),
        org_id=invoice.org_id,
        invoice_id=invoice.id,
        amount_cents=amount_cents,
        reason=reason,
        status="pending",
        requested_by=principal.user_id,
    )
    session.add(row)
    if method == "card":
        row = await _refund_card(session, settings, invoice, row, rooms, idempotency_key, principal)
    else:
        await session.flush()
        row.status = "succeeded"
        await _post(session, invoice, row, source="manual", external_id=str(row.id), method=method, reference=reference)
    record_audit(
        session,
        principal,
        "refund.create",
        "refund",
        row.id,
        after={"invoice_id": str(invoice.id), "amount_cents": amount_cents, "method": method, "status": row.status},
    )
    await session.flush()
    return row


async def _refund_card(
    session: AsyncSession,
    settings: Settings,
    invoice: Invoice,
    row: Refund,
    rooms: list[tuple[str, int]],
    idempotency_key: str | None,
    principal: Principal,
) -> Refund:
    fitting = [pi for pi, room in rooms if room >= row.amount_cents]
    if not fitting:
        largest = max((room for _, room in rooms), default=0)
        raise Problem(
            409,
            "refund-exceeds-payment",
            "No single card payment covers this refund",
            f"A card refund goes back to one payment; the largest refundable card payment is {largest} cents. "
            "Refund in parts, or record a manual refund.",
            refundable_cents=max(largest, 0),
        )
    account = await session.scalar(select(StripeAccount.account_id).where(StripeAccount.org_id == invoice.org_id))
    if account is None:
        raise Problem(409, "stripe-not-connected", "No Stripe account is connected", "Connect Stripe first.")
    row.payment_intent_id = fitting[0]
    await session.flush()
    # The caller's Idempotency-Key, when given, keys the Stripe call too: a retried request whose
    # first answer was lost refunds once, not twice. Else our refund id does.
    ids: tuple[object, ...] = (
        (invoice.org_id, stripe_io.caller_key(principal.user_id, idempotency_key)) if idempotency_key else (row.id,)
    )
    refund = await stripe_io.create_refund(
        settings,
        account,
        {
            "payment_intent": row.payment_intent_id,
            "amount": row.amount_cents,
            "reason": "requested_by_customer",
            "metadata": {"refund_id": str(row.id), "invoice_id": str(invoice.id), "org_id": str(invoice.org_id)},
        },
        ids,
    )
    adopted = await session.scalar(select(Refund).where(Refund.stripe_refund_id == refund["id"]))
    if adopted is not None:
        # A retry of a request whose first answer was lost: Stripe replayed that refund, which the
        # webhook side adopted meanwhile. It is this refund; no second row.
        await session.delete(row)
        await session.flush()
        row = adopted
    else:
        row.stripe_refund_id = refund["id"]
        await session.flush()
    await settle(session, invoice, row, refund)
    return row


async def _post(
    session: AsyncSession,
    invoice: Invoice,
    row: Refund,
    *,
    source: str,
    external_id: str,
    method: str | None,
    reference: str | None = None,
) -> None:
    new = await post_entry(
        session,
        Entry(
            org_id=invoice.org_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            kind="refund",
            amount_cents=row.amount_cents,
            source=source,
            method=method,
            reference=reference,
            external_id=external_id,
        ),
    )
    if new:
        emit(
            session,
            RefundSucceeded(
                org_id=invoice.org_id, invoice_id=invoice.id, refund_id=row.id, amount_cents=row.amount_cents
            ),
        )


async def settle(session: AsyncSession, invoice: Invoice, row: Refund, refund: dict[str, Any]) -> None:
    """Apply Stripe's current state of a refund to our row (and the ledger when it succeeded)."""
    status = refund.get("status")
    now = datetime.now(UTC)
    before = row.status
    if status == "succeeded":
        if row.status != "succeeded":
            if row.status in ("failed", "canceled"):
                logger.warning("refund %s was %s and is now succeeded at Stripe", row.id, row.status)
            row.status = "succeeded"
            row.updated_at = now
        await _post(session, invoice, row, source="stripe", external_id=refund["id"], method="card")
    elif status in ("failed", "canceled"):
        if row.status == "succeeded":
            # Stripe could not return the money after all: the ledger keeps the refund (append-
            # only); the office must see it.
            logger.error("refund %s failed at Stripe after it had succeeded: review invoice %s", row.id, invoice.id)
        elif row.status != status:
            row.status = str(status)
            row.failure_reason = str(refund.get("failure_reason") or status)[:500]
            row.updated_at = now
    if row.status != before:
        record_audit(
            session,
            None,
            "refund.settle",
            "refund",
            row.id,
            before={"status": before},
            after={"status": row.status, "stripe_refund_id": refund.get("id")},
            org_id=invoice.org_id,
        )
    await session.flush()


async def sync_stripe_refund(
    session: AsyncSession, settings: Settings, org_id: UUID, account: str, refund: dict[str, Any]
) -> HandlerOutcome:
    invoice_id = await stripe_io.invoice_of(settings, account, refund)
    if invoice_id is None:
        return "ignored"
    invoice = await _lock(session, invoice_id)  # waits for a refund request still in flight
    if invoice is None:
        return "ignored"
    row = await session.scalar(
        select(Refund).where(Refund.stripe_refund_id == refund["id"]).execution_options(populate_existing=True)
    )
    if row is None:
        ours = (refund.get("metadata") or {}).get("refund_id")
        if ours:
            try:
                row = await session.get(Refund, UUID(str(ours)), populate_existing=True)
            except ValueError:
                row = None
            if row is not None and row.stripe_refund_id is None:
                row.stripe_refund_id = refund["id"]
    if row is None:
        row = await _adopt(session, invoice, refund)
    await settle(session, invoice, row, refund)
    return "processed"


async def _adopt(session: AsyncSession, invoice: Invoice, refund: dict[str, Any]) -> Refund:
    """A refund made in Stripe (dashboard, or a request whose answer we lost): ours from now on."""
    pi = refund.get("payment_intent")
    await session.execute(
        insert(Refund)
        .values(
            id=uuid7(),
            org_id=invoice.org_id,
            invoice_id=invoice.id,
            amount_cents=int(refund.get("amount") or 0),
            reason=str(refund.get("reason") or "Refunded in Stripe"),
            status="pending",
            stripe_refund_id=refund["id"],
            payment_intent_id=pi if isinstance(pi, str) else (pi or {}).get("id"),
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["stripe_refund_id"])
    )
    row = await session.scalar(
        select(Refund).where(Refund.stripe_refund_id == refund["id"]).execution_options(populate_existing=True)
    )
    assert row is not None
    logger.info("adopted refund %s made in Stripe on invoice %s", refund["id"], invoice.id)
    return row


async def sync_charge_refunds(
    session: AsyncSession, settings: Settings, org_id: UUID, account: str, charge: dict[str, Any]
) -> HandlerOutcome:
    """`charge.refunded`: settle this charge's refunds as Stripe holds them now (ours still pending,
    and any listed on the charge)."""
    invoice_id = await stripe_io.invoice_of(settings, account, charge)
    if invoice_id is None:
        return "ignored"
    invoice = await _lock(session, invoice_id)
    if invoice is None:
        return "ignored"
    listed = [r["id"] for r in ((charge.get("refunds") or {}).get("data") or []) if isinstance(r, dict)]
    pi = charge.get("payment_intent")
    pi = pi if isinstance(pi, str) else (pi or {}).get("id")
    pending = (
        await session.scalars(
            select(Refund.stripe_refund_id).where(
                Refund.invoice_id == invoice.id,
                Refund.payment_intent_id == pi,
                Refund.status == "pending",
                Refund.stripe_refund_id.is_not(None),
            )
        )
    ).all()
    for refund_id in dict.fromkeys([*listed, *[p for p in pending if p]]):
        refund = await stripe_io.retrieve(settings, account, "refund", refund_id)
        if refund is not None:
            await sync_stripe_refund(session, settings, org_id, account, refund)
    return "processed"


async def list_refunds(session: AsyncSession, invoice_id: UUID) -> list[Refund]:
    if await session.scalar(select(Invoice.id).where(Invoice.id == invoice_id)) is None:
        raise not_found("invoice")
    return list(
        (
            await session.scalars(
                select(Refund).where(Refund.invoice_id == invoice_id).order_by(Refund.created_at, Refund.id).limit(500)
            )
        ).all()
    )


__all__ = ["create_refund", "list_refunds", "pending_cents", "settle", "sync_charge_refunds", "sync_stripe_refund"]
