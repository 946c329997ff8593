"""Processing of stored Stripe events: the inbox handler of the "stripe" source.

Every effect is exactly once and independent of delivery order:
- the event only says *what* changed; the handler re-reads the object from Stripe (on the
  organisation's connected account) and applies its current state, so a late `created` after an
  `updated`, or five copies at once, end in the same place;
- money posts through the ledger keyed by the Stripe object id (a PaymentIntent pays once, a
  refund refunds once, a dispute withdraws once), and events are emitted only when a row is new
  or a state really changes.

The Connect `account` of the event is mapped to our organisation through `stripe_accounts`
(`billing_stripe_account_org`, a SECURITY DEFINER look-up: the job has no organisation yet), then
the transaction is scoped to it. An event we cannot match (no account, an unknown account, an
object without our invoice reference, a type we do not handle) is "ignored": logged, counted in
`webhook_events_total{result="ignored"}`, never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.engine import apply_org_now
from spotless.domain.audit.public import record_audit
from spotless.domain.billing import disputes, refunds, stripe_io
from spotless.domain.billing.cards import apply_setup_completed
from spotless.domain.billing.checkout import apply_session_status
from spotless.domain.billing.connect import apply_account
from spotless.domain.billing.events import PaymentFailed, PaymentRecorded
from spotless.domain.billing.models import Invoice, LedgerEntry
from spotless.domain.billing.public import Entry, post_entry
from spotless.domain.billing.stripe_io import invoice_ref
from spotless.lib.events import emit
from spotless.lib.inbox import HandlerOutcome, ReceivedEvent, inbox_handler
from spotless.lib.jobs.runtime import get_runtime
from spotless.settings import Settings

logger = logging.getLogger("spotless.billing.stripe_events")

SOURCE = "stripe"


@dataclass(frozen=True)
class Context:
    session: AsyncSession
    settings: Settings
    org_id: UUID
    account: str
    event: ReceivedEvent

    async def fetch(self, kind: str, object_id: str, *, expand: list[str] | None = None) -> dict[str, Any] | None:
        return await stripe_io.retrieve(self.settings, self.account, kind, object_id, expand=expand)


Handler = Callable[[Context, dict[str, Any]], Awaitable[HandlerOutcome]]
HANDLERS: dict[str, Handler] = {}


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for event_type in types:
            HANDLERS[event_type] = fn
        return fn

    return register


async def org_for_account(session: AsyncSession, account: str) -> UUID | None:
    found = await session.scalar(text("SELECT billing_stripe_account_org(:account)"), {"account": account})
    return UUID(str(found)) if found is not None else None


@inbox_handler(SOURCE)
async def handle_stripe_event(session: AsyncSession, event: ReceivedEvent) -> HandlerOutcome:
    payload = event.payload
    handler = HANDLERS.get(event.event_type or "")
    if handler is None:
        logger.info("stripe event %s of type %s: not a type we handle", event.external_id, event.event_type)
        return "ignored"
    account = payload.get("account")
    if not isinstance(account, str) or not account:
        logger.warning("stripe event %s (%s) has no connected account: ignored", event.external_id, event.event_type)
        return "ignored"
    org_id = await org_for_account(session, account)
    if org_id is None:
        logger.warning(
            "stripe event %s (%s) for unknown account %s: ignored", event.external_id, event.event_type, account
        )
        return "ignored"
    await apply_org_now(session, org_id)
    obj = (payload.get("data") or {}).get("object") or {}
    ctx = Context(session=session, settings=get_runtime().settings, org_id=org_id, account=account, event=event)
    outcome = await handler(ctx, obj)
    if outcome == "ignored":
        logger.info(
            "stripe event %s (%s) matched nothing of organisation %s", event.external_id, event.event_type, org_id
        )
    return outcome


# --- invoices referenced by Stripe objects -------------------------------------------------------


async def lock_invoice(session: AsyncSession, invoice_id: UUID) -> Invoice | None:
    """The invoice (of the scoped organisation: RLS hides others), locked for this transaction."""
    return await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )


# --- payments ------------------------------------------------------------------------------------


async def apply_payment_intent(ctx: Context, pi: dict[str, Any]) -> HandlerOutcome:
    """Post a succeeded PaymentIntent to its invoice once: the open amount as a payment, anything
    beyond it as the client's credit (never lost)."""
    if pi.get("status") != "succeeded":
        return "processed"
    invoice_id = invoice_ref(pi)
    if invoice_id is None:
        return "ignored"
    invoice = await lock_invoice(ctx.session, invoice_id)
    if invoice is None:
        return "ignored"
    received = int(pi.get("amount_received") or pi.get("amount") or 0)
    if received <= 0:
        return "processed"
    # The invoice lock orders concurrent deliveries: the second sees the first's entries.
    posted = await ctx.session.scalar(
        select(
            exists().where(
                LedgerEntry.source == SOURCE,
                LedgerEntry.external_id == pi["id"],
                LedgerEntry.kind.in_(("payment", "credit_issued")),
            )
        )
    )
    if posted:
        return "processed"
    open_cents = max(invoice.total_cents - invoice.paid_cents, 0) if invoice.status not in ("draft", "void") else 0
    payment = min(received, open_cents)
    charge = pi.get("latest_charge")
    reference = charge if isinstance(charge, str) else (charge or {}).get("id")
    common = {
        "org_id": ctx.org_id,
        "client_id": invoice.client_id,
        "source": SOURCE,
        "method": "card",
        "reference": reference,
        "external_id": pi["id"],
    }
    if payment > 0:
        await post_entry(ctx.session, Entry(kind="payment", amount_cents=payment, invoice_id=invoice.id, **common))
        emit(
            ctx.session,
            PaymentRecorded(
                org_id=ctx.org_id,
                invoice_id=invoice.id,
                client_id=invoice.client_id,
                amount_cents=payment,
                method="card",
            ),
        )
    if received > payment:
        # Paid twice (two sessions) or after the office recorded cash: kept as the client's credit.
        await post_entry(ctx.session, Entry(kind="credit_issued", amount_cents=received - payment, **common))
    # The office's trail shows money arriving by card as it shows money recorded by hand.
    record_audit(
        ctx.session,
        None,
        "billing.payment.card",
        "invoice",
        invoice.id,
        after={
            "payment_intent": pi["id"],
            "amount_cents": payment,
            "credit_cents": received - payment,
            "status": invoice.status,
        },
        org_id=ctx.org_id,
    )
    if received > payment:
        logger.warning(
            "payment %s exceeds the open amount of invoice %s: %d cents kept as credit",
            pi["id"],
            invoice.id,
            received - payment,
        )
    return "processed"


async def _checkout_session(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    session_obj = await ctx.fetch("checkout.session", obj["id"])
    if session_obj is None:
        return "ignored"
    if session_obj.get("mode") == "setup":
        return await _setup_completed(ctx, session_obj)
    await apply_session_status(ctx.session, session_obj)
    if session_obj.get("payment_status") != "paid":
        return "processed"  # an async method still settling, or unpaid: its own events follow
    pi_id = session_obj.get("payment_intent")
    pi_id = pi_id if isinstance(pi_id, str) else (pi_id or {}).get("id")
    if not pi_id:
        return "ignored"
    pi = await ctx.fetch("payment_intent", pi_id)
    return "ignored" if pi is None else await apply_payment_intent(ctx, pi)


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
async def checkout_session_paid(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    return await _checkout_session(ctx, obj)


@handles("checkout.session.async_payment_failed")
async def checkout_session_failed(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    """A delayed method (a bank debit) failed after Checkout completed: terminal for that session,
    so this is where a Checkout payment's failure is told (`PaymentFailed`, once per session)."""
    session_obj = await ctx.fetch("checkout.session", obj["id"])
    if session_obj is None or invoice_ref(session_obj) is None:
        return "ignored"
    await apply_session_status(ctx.session, session_obj)
    pi_id = session_obj.get("payment_intent")
    pi_id = pi_id if isinstance(pi_id, str) else (pi_id or {}).get("id")
    pi = await ctx.fetch("payment_intent", pi_id) if pi_id else None
    if pi is not None and pi.get("status") == "succeeded":
        return await apply_payment_intent(ctx, pi)  # paid since: nothing failed
    return await _tell_failure(ctx, invoice_ref(session_obj), pi or {})


async def _tell_failure(ctx: Context, invoice_id: UUID | None, pi: dict[str, Any]) -> HandlerOutcome:
    invoice = await ctx.session.get(Invoice, invoice_id) if invoice_id else None
    if invoice is None:
        return "ignored"
    error = pi.get("last_payment_error") or {}
    reason = error.get("decline_code") or error.get("code") or "payment_failed"
    emit(
        ctx.session,
        PaymentFailed(org_id=ctx.org_id, invoice_id=invoice.id, client_id=invoice.client_id, reason=str(reason)[:200]),
    )
    return "processed"


async def _setup_completed(ctx: Context, session_obj: dict[str, Any]) -> HandlerOutcome:
    """A card saved through Checkout in setup mode: stored by the cards module (helper "stripe")
    from the SetupIntent's PaymentMethod as Stripe holds them now."""
    seti_id = session_obj.get("setup_intent")
    seti_id = seti_id if isinstance(seti_id, str) else (seti_id or {}).get("id")
    if not seti_id or session_obj.get("status") != "complete":
        return "ignored"
    seti = await ctx.fetch("setup_intent", seti_id, expand=["payment_method"])
    method = (seti or {}).get("payment_method")
    if isinstance(method, str):
        method = await ctx.fetch("payment_method", method)
    if not isinstance(method, dict):
        return "ignored"
    saved = await apply_setup_completed(ctx.session, ctx.org_id, session_obj, method)
    return "ignored" if saved is None else "processed"


@handles("payment_intent.succeeded")
async def payment_intent_succeeded(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    pi = await ctx.fetch("payment_intent", obj["id"])
    return "ignored" if pi is None else await apply_payment_intent(ctx, pi)


@handles("payment_intent.payment_failed")
async def payment_intent_failed(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    """Told once, by whoever knows the failure is final:
    - an off-session charge (`purpose=auto_charge`) is told by the charging code, which sees the
      decline when it confirms (saved cards settle at once; a card charge that went `processing`
      and failed later would be told by nobody: none of ours can, today);
    - a Checkout payment is told by `checkout.session.async_payment_failed` (a declined card in the
      Checkout page is not final: the payer tries another one);
    - any other PaymentIntent naming our invoice is told here."""
    pi = await ctx.fetch("payment_intent", obj["id"])
    if pi is None or invoice_ref(pi) is None:
        return "ignored"
    if pi.get("status") == "succeeded":
        return await apply_payment_intent(ctx, pi)  # retried and paid since: no failure to tell
    purpose = (pi.get("metadata") or {}).get("purpose")
    if purpose in (None, "auto_charge"):
        return "processed"  # Checkout, or an off-session charge: told elsewhere (see above)
    return await _tell_failure(ctx, invoice_ref(pi), pi)


# --- refunds and disputes (their own modules) ----------------------------------------------------


@handles("charge.refunded")
async def charge_refunded(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    charge = await ctx.fetch("charge", obj["id"])
    if charge is None:
        return "ignored"
    return await refunds.sync_charge_refunds(ctx.session, ctx.settings, ctx.org_id, ctx.account, charge)


@handles("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
async def refund_changed(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    refund = await ctx.fetch("refund", obj["id"])
    if refund is None:
        return "ignored"
    return await refunds.sync_stripe_refund(ctx.session, ctx.settings, ctx.org_id, ctx.account, refund)


@handles(
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
async def dispute_changed(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    dispute = await ctx.fetch("dispute", obj["id"])
    if dispute is None:
        return "ignored"
    return await disputes.sync_dispute(ctx.session, ctx.settings, ctx.org_id, ctx.account, dispute)


# --- the connected account -----------------------------------------------------------------------


@handles("account.updated")
async def account_updated(ctx: Context, obj: dict[str, Any]) -> HandlerOutcome:
    account = await stripe_io.retrieve_account(ctx.settings, ctx.account)
    if account is None:
        return "ignored"
    return "ignored" if await apply_account(ctx.session, ctx.org_id, account) is None else "processed"


HANDLED_TYPES = tuple(sorted(HANDLERS))

__all__ = ["HANDLED_TYPES", "HANDLERS", "handle_stripe_event", "org_for_account"]
