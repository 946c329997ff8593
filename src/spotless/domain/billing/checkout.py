"""Card payment of an invoice: a Stripe Checkout Session on the organisation's connected account,
for what is still open on the invoice.

`open_checkout(session, invoice, settings)` (the office's `POST /v1/invoices/{id}/checkout` and the
public pay link both use it):
- locks the invoice row, so concurrent clicks run one after the other: the second finds the
  session the first opened and reuses it (one open payment session per invoice is also a partial
  unique index);
- the amount is the invoice's open amount (`total - paid`, from the ledger-maintained columns);
  an invoice that is not issued/partially paid, or has nothing open, answers 409;
- an open session is reused when its amount is still right and it does not expire within a few
  minutes; otherwise it is expired at Stripe and a new one opened;
- the invoice id is on the session three times: `client_reference_id`, `metadata` and
  `payment_intent_data.metadata` (the last reaches the PaymentIntent and its Charge, so refunds
  and disputes map back); `org_id` and `client_id` ride along in both metadata;
- the session URL is a bearer URL: answered, never stored or logged (re-read from Stripe on reuse).

Payment itself is recorded by the webhooks (helper "hooks"), never from the success page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.connect import payable_account
from spotless.domain.billing.models import CheckoutSession, Invoice, StripeCustomer
from spotless.domain.billing.public import open_cents
from spotless.domain.billing.stripe_client import StripeGateway, StripeRejected, stripe_gateway
from spotless.domain.identity.public import Principal
from spotless.lib.errors import conflict, not_found
from spotless.settings import StripeSettings

PAYABLE_STATUSES = ("issued", "partially_paid")
# Stripe's smallest charge in CAD/USD.
MIN_CHARGE_CENTS = 50
# A session this close to its expiry is not handed out again.
REUSE_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True)
class CheckoutLink:
    url: str
    stripe_session_id: str
    amount_cents: int
    currency: str
    expires_at: datetime
    reused: bool


def payable_amount(invoice: Invoice) -> int:
    """What a card payment of this invoice is for now; 409 `invoice-not-payable` otherwise."""
    if invoice.kind != "invoice" or invoice.status not in PAYABLE_STATUSES:
        raise conflict(
            "invoice-not-payable",
            f"An invoice that is {invoice.status.replace('_', ' ')} cannot be paid by card.",
            invoice_status=invoice.status,
        )
    amount = open_cents(invoice)
    if amount < MIN_CHARGE_CENTS:
        raise conflict(
            "invoice-not-payable",
            "Nothing (or less than the smallest card payment) is left to pay on this invoice.",
            open_cents=amount,
        )
    return amount


def invoice_metadata(invoice: Invoice, **extra: str) -> dict[str, str]:
    return {
        "invoice_id": str(invoice.id),
        "org_id": str(invoice.org_id),
        "client_id": str(invoice.client_id),
        **extra,
    }


async def lock_invoice(session: AsyncSession, invoice_id: UUID) -> Invoice:
    found = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )
    if found is None:
        raise not_found("invoice")
    return found


async def open_payment_session(session: AsyncSession, invoice_id: UUID) -> CheckoutSession | None:
    return await session.scalar(
        select(CheckoutSession).where(
            CheckoutSession.invoice_id == invoice_id,
            CheckoutSession.mode == "payment",
            CheckoutSession.status == "open",
        )
    )


def _stamp(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


async def _retire(
    session: AsyncSession, gateway: StripeGateway, account_id: str, row: CheckoutSession, remote: Any
) -> None:
    """Expire an open session we no longer hand out (wrong amount, about to expire). A session the
    payer completed meanwhile is a payment on its way: 409, the webhook will record it."""
    status = remote.status
    if status == "open":
        try:
            remote = await gateway.post(
                "checkout_expire",
                (row.stripe_session_id,),
                lambda v1, o: v1.checkout.sessions.expire_async(row.stripe_session_id, None, o),
                account=account_id,
            )
        except StripeRejected:  # completed or expired in between: read what it is now
            remote = await gateway.get(
                lambda v1, o: v1.checkout.sessions.retrieve_async(row.stripe_session_id, None, o),
                account=account_id,
                op="checkout",
            )
        status = remote.status
    row.status = "complete" if status == "complete" else "expired"
    row.updated_at = datetime.now(UTC)
    await session.flush()
    if status == "complete":
        raise conflict(
            "invoice-payment-in-progress",
            "A card payment of this invoice was just made; it shows on the invoice once Stripe confirms it.",
        )


async def open_checkout(
    session: AsyncSession, invoice: Invoice, settings: StripeSettings, *, actor: Principal | None = None
) -> CheckoutLink:
    locked = await lock_invoice(session, invoice.id)
    amount = payable_amount(locked)
    account = await payable_account(session, locked.org_id, settings)
    gateway = stripe_gateway(settings)
    now = datetime.now(UTC)

    current = await open_payment_session(session, locked.id)
    if current is not None:
        stripe_session_id = current.stripe_session_id
        remote = await gateway.get(
            lambda v1, o: v1.checkout.sessions.retrieve_async(stripe_session_id, None, o),
            account=account.account_id,
            op="checkout",
        )
        expires_at = current.expires_at or _stamp(remote.expires_at)
        if remote.status == "open" and current.amount_cents == amount and expires_at > now + REUSE_MARGIN:
            return CheckoutLink(
                url=str(remote.url),
                stripe_session_id=stripe_session_id,
                amount_cents=amount,
                currency=locked.currency,
                expires_at=expires_at,
                reused=True,
            )
        await _retire(session, gateway, account.account_id, current, remote)

    attempt = (
        await session.scalar(
            select(func.count())
            .select_from(CheckoutSession)
            .where(CheckoutSession.invoice_id == locked.id, CheckoutSession.mode == "payment")
        )
        or 0
    ) + 1
    metadata = invoice_metadata(locked)
    label = f"Invoice {locked.display_number or locked.id}"
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": locked.currency.lower(),
                    "unit_amount": amount,
                    "product_data": {"name": label},
                },
            }
        ],
        "client_reference_id": str(locked.id),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata, "description": label},
        "success_url": settings.checkout_success_url,
        "cancel_url": settings.checkout_cancel_url,
    }
    if settings.checkout_expires_minutes < 24 * 60:
        params["expires_at"] = int((now + timedelta(minutes=settings.checkout_expires_minutes)).timestamp())
    customer_id = await session.scalar(
        select(StripeCustomer.customer_id).where(
            StripeCustomer.org_id == locked.org_id, StripeCustomer.client_id == locked.client_id
        )
    )
    if customer_id:
        params["customer"] = customer_id
    elif locked.client_email:
        params["customer_email"] = locked.client_email

    created = await gateway.post(
        "checkout",
        (locked.id, attempt, amount),
        lambda v1, o: v1.checkout.sessions.create_async(params, o),
        account=account.account_id,
    )
    expires_at = _stamp(created.expires_at)
    session.add(
        CheckoutSession(
            org_id=locked.org_id,
            invoice_id=locked.id,
            client_id=locked.client_id,
            mode="payment",
            stripe_session_id=created.id,
            amount_cents=amount,
            status="open",
            expires_at=expires_at,
        )
    )
    await session.flush()
    record_audit(
        session,
        actor,
        "billing.checkout.open",
        "invoice",
        locked.id,
        after={"amount_cents": amount, "stripe_session_id": created.id},
        org_id=locked.org_id,
    )
    return CheckoutLink(
        url=str(created.url),
        stripe_session_id=created.id,
        amount_cents=amount,
        currency=locked.currency,
        expires_at=expires_at,
        reused=False,
    )


async def apply_session_status(session: AsyncSession, session_obj: Mapping[str, Any] | Any) -> CheckoutSession | None:
    """Save a Checkout Session's status (complete / expired) on our row (webhook handlers: the
    object as re-read from Stripe). None when the session is not ours."""
    get = session_obj.get if isinstance(session_obj, Mapping) else lambda k, d=None: getattr(session_obj, k, d)
    row = await session.scalar(
        select(CheckoutSession).where(CheckoutSession.stripe_session_id == get("id")).with_for_update()
    )
    status = get("status")
    if row is None or status not in ("open", "complete", "expired"):
        return row
    if row.status != status and row.status == "open":
        row.status = status
        row.updated_at = datetime.now(UTC)
        await session.flush()
    return row
