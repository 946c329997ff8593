"""Saved cards: a client saves a card through Stripe Checkout in setup mode, with the consent to be
charged off-session recorded, and the organisation charges it (auto-charge, `billing.charging`).

- `start_card_setup`: the client's Stripe Customer on the organisation's account (made once), and a
  setup-mode Checkout Session whose submit button carries the consent text (`consent_text`; the
  same text rides in the session's metadata, so what is recorded is what was shown).
- `apply_setup_completed(session, org_id, checkout_session, payment_method)`: the
  `checkout.session.completed` handler (helper "hooks") calls it for a setup session with the
  objects it re-read from Stripe: stores the card (brand, last 4, expiry) with its consent, as the
  client's one active card (a previous one is deactivated). Idempotent.
- `list_payment_methods`, `remove_payment_method` (deactivated here, detached at Stripe).
- `charge_saved_card(session, invoice, settings, attempt=...)`: an off-session PaymentIntent
  (`confirm=true, off_session=true`) for the invoice's open amount, idempotency key
  `spotless:charge:<invoice>:<attempt>:<amount>`. A decline emits `PaymentFailed`. The payment is
  recorded in the ledger by the `payment_intent.succeeded` webhook (its metadata names the
  invoice), like every card payment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.checkout import invoice_metadata, lock_invoice, payable_amount
from spotless.domain.billing.connect import get_account, payable_account
from spotless.domain.billing.events import PaymentFailed
from spotless.domain.billing.models import CheckoutSession, Invoice, PaymentMethod, StripeCustomer
from spotless.domain.billing.public import get_settings
from spotless.domain.billing.stripe_client import StripeGateway, StripeRejected, stripe_gateway
from spotless.domain.clients.public import client_contact
from spotless.domain.identity.public import Principal, org_letterhead
from spotless.lib.errors import Problem, conflict, not_found
from spotless.lib.events import emit
from spotless.settings import StripeSettings

logger = logging.getLogger("spotless.billing.cards")

CONSENT_TEXT = (
    "I authorise {business} to save this card and to charge it for my cleaning visits and invoices "
    "when they are due, until I remove it."
)


def consent_text(business: str) -> str:
    return CONSENT_TEXT.format(business=business.strip()[:200] or "this business")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


@dataclass(frozen=True, kw_only=True)
class SetupLink:
    url: str
    stripe_session_id: str
    expires_at: datetime


async def ensure_customer(
    session: AsyncSession,
    gateway: StripeGateway,
    account_id: str,
    org_id: UUID,
    client_id: UUID,
    *,
    name: str | None = None,
    email: str | None = None,
) -> str:
    """The client's Stripe Customer on the organisation's account (created once)."""
    found = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.org_id == org_id, StripeCustomer.client_id == client_id)
    )
    if found:
        return found
    params: dict[str, Any] = {"metadata": {"org_id": str(org_id), "client_id": str(client_id)}}
    if name:
        params["name"] = name
    if email:
        params["email"] = email
    customer = await gateway.post(
        "customer", (org_id, client_id), lambda v1, o: v1.customers.create_async(params, o), account=account_id
    )
    now = datetime.now(UTC)
    await session.execute(
        insert(StripeCustomer)
        .values(org_id=org_id, client_id=client_id, customer_id=customer.id, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["org_id", "client_id"])
    )
    stored = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.org_id == org_id, StripeCustomer.client_id == client_id)
    )
    return stored or customer.id


async def start_card_setup(
    session: AsyncSession,
    principal: Principal,
    client_id: UUID,
    settings: StripeSettings,
    *,
    business: str,
    client_name: str | None = None,
    client_email: str | None = None,
) -> SetupLink:
    """A setup-mode Checkout Session for the client to save a card (the client must exist:
    the caller checked it)."""
    return await _open_setup(
        session,
        principal.org_id,
        client_id,
        settings,
        business=business,
        client_name=client_name,
        client_email=client_email,
        actor=principal,
        requested_by=str(principal.user_id),
    )


async def start_card_setup_by_link(session: AsyncSession, invoice: Invoice, settings: StripeSettings) -> SetupLink:
    """The card-update link of a follow-up step (POST /v1/pay/{token}/card-setup): the invoice's
    client puts a new card on file. The link's token is the credential; the card is the invoice
    client's, whoever holds the link (as paying through it would pay that client's invoice)."""
    if invoice.kind != "invoice" or invoice.status in ("draft", "void"):
        raise conflict("card-setup-not-available", "A card can be saved from the link of an issued invoice only.")
    letterhead = await org_letterhead(session, invoice.org_id)
    contact = await client_contact(session, invoice.client_id)
    name, email = contact if contact is not None else (invoice.client_name or None, invoice.client_email)
    return await _open_setup(
        session,
        invoice.org_id,
        invoice.client_id,
        settings,
        business=letterhead.name,
        client_name=name,
        client_email=email,
        actor=None,
        requested_by="pay_link",
        invoice_id=invoice.id,
    )


async def _open_setup(
    session: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    settings: StripeSettings,
    *,
    business: str,
    client_name: str | None,
    client_email: str | None,
    actor: Principal | None,
    requested_by: str,
    invoice_id: UUID | None = None,
) -> SetupLink:
    account = await payable_account(session, org_id, settings)
    gateway = stripe_gateway(settings)
    customer_id = await ensure_customer(
        session, gateway, account.account_id, org_id, client_id, name=client_name, email=client_email
    )
    billing = await get_settings(session, org_id)
    attempt = (
        await session.scalar(
            select(func.count())
            .select_from(CheckoutSession)
            .where(CheckoutSession.client_id == client_id, CheckoutSession.mode == "setup")
        )
        or 0
    ) + 1
    consent = consent_text(business)
    ids = {"org_id": str(org_id), "client_id": str(client_id)}
    metadata = {**ids, "purpose": "card_setup", "consent_text": consent, "requested_by": requested_by}
    if invoice_id is not None:
        metadata["invoice_id"] = str(invoice_id)
    params: dict[str, Any] = {
        "mode": "setup",
        "customer": customer_id,
        "currency": billing.currency.lower(),
        "client_reference_id": str(client_id),
        "metadata": metadata,
        "setup_intent_data": {"metadata": {**ids, "purpose": "card_setup"}},
        "custom_text": {"submit": {"message": consent}},
        "success_url": settings.checkout_success_url,
        "cancel_url": settings.checkout_cancel_url,
    }
    created = await gateway.post(
        "card_setup",
        (client_id, attempt),
        lambda v1, o: v1.checkout.sessions.create_async(params, o),
        account=account.account_id,
    )
    expires_at = datetime.fromtimestamp(int(created.expires_at), UTC)
    now = datetime.now(UTC)
    await session.execute(
        insert(CheckoutSession)
        .values(
            org_id=org_id,
            client_id=client_id,
            mode="setup",
            stripe_session_id=created.id,
            status="open",
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["stripe_session_id"])
    )
    record_audit(
        session,
        actor,
        "billing.card_setup.start",
        "client",
        client_id,
        after={"stripe_session_id": created.id, "via": "office" if actor is not None else "pay_link"},
        org_id=org_id,
    )
    return SetupLink(url=str(created.url), stripe_session_id=created.id, expires_at=expires_at)


async def apply_setup_completed(
    session: AsyncSession, org_id: UUID, checkout_session: Any, payment_method: Any
) -> PaymentMethod | None:
    """Store the card a completed setup session saved, with the consent shown on it, as the
    client's active card. None when the session is not one of ours (or not setup mode)."""
    row = await session.scalar(
        select(CheckoutSession)
        .where(
            CheckoutSession.org_id == org_id,
            CheckoutSession.stripe_session_id == _get(checkout_session, "id"),
            CheckoutSession.mode == "setup",
        )
        .with_for_update()
    )
    if row is None:
        return None
    # One completion at a time per client (the client's customer row is the lock).
    await session.execute(
        select(StripeCustomer.customer_id)
        .where(StripeCustomer.org_id == org_id, StripeCustomer.client_id == row.client_id)
        .with_for_update()
    )
    row.status = "complete"
    row.updated_at = datetime.now(UTC)
    pm_id = str(_get(payment_method, "id"))
    existing = await session.scalar(select(PaymentMethod).where(PaymentMethod.stripe_payment_method_id == pm_id))
    if existing is not None:
        await session.flush()
        return existing
    metadata = _get(checkout_session, "metadata") or {}
    card = _get(payment_method, "card") or {}
    now = datetime.now(UTC)
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.client_id == row.client_id, PaymentMethod.active.is_(True))
        .values(active=False, updated_at=now)
    )
    method = PaymentMethod(
        org_id=org_id,
        client_id=row.client_id,
        stripe_payment_method_id=pm_id,
        brand=_get(card, "brand"),
        last4=_get(card, "last4"),
        exp_month=_get(card, "exp_month"),
        exp_year=_get(card, "exp_year"),
        consent_at=now,
        consent_text=str(_get(metadata, "consent_text") or consent_text("")),
        consent_by=None,  # the card holder consented in Stripe Checkout
        active=True,
    )
    session.add(method)
    await session.flush()
    record_audit(
        session,
        None,
        "billing.payment_method.add",
        "client",
        row.client_id,
        after={"brand": method.brand, "last4": method.last4, "payment_method_id": method.id},
        org_id=org_id,
    )
    return method


async def list_payment_methods(session: AsyncSession, client_id: UUID) -> list[PaymentMethod]:
    rows = await session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.client_id == client_id, PaymentMethod.active.is_(True))
        .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id)
    )
    return list(rows)


async def active_payment_method(session: AsyncSession, client_id: UUID) -> PaymentMethod | None:
    return await session.scalar(
        select(PaymentMethod).where(PaymentMethod.client_id == client_id, PaymentMethod.active.is_(True))
    )


async def remove_payment_method(
    session: AsyncSession, principal: Principal, client_id: UUID, method_id: UUID, settings: StripeSettings
) -> None:
    """No further charge uses the card (deactivated here at once); it is detached from the Stripe
    customer too (best effort: a Stripe outage does not keep a card the client wants gone)."""
    method = await session.scalar(
        select(PaymentMethod)
        .where(PaymentMethod.id == method_id, PaymentMethod.client_id == client_id, PaymentMethod.active.is_(True))
        .with_for_update()
    )
    if method is None:
        raise not_found("payment method")
    method.active = False
    method.updated_at = datetime.now(UTC)
    await session.flush()
    record_audit(
        session,
        principal,
        "billing.payment_method.remove",
        "client",
        client_id,
        before={"brand": method.brand, "last4": method.last4, "payment_method_id": method.id},
    )
    customer_id = await session.scalar(select(StripeCustomer.customer_id).where(StripeCustomer.client_id == client_id))
    connected = await get_account(session, principal.org_id)
    if customer_id is None or connected is None:
        return
    pm_id = method.stripe_payment_method_id
    try:
        await stripe_gateway(settings).post(
            "detach",
            (pm_id,),
            lambda v1, o: v1.payment_methods.detach_async(pm_id, None, o),
            account=connected.account_id,
        )
    except Problem as exc:  # unavailable, or already detached: the card is inactive here either way
        logger.warning("could not detach payment method %s at Stripe: %s", method.id, exc.detail)


@dataclass(frozen=True, kw_only=True)
class ChargeOutcome:
    status: str  # succeeded | processing | failed | skipped
    payment_intent_id: str | None = None
    reason: str | None = None


async def charge_saved_card(
    session: AsyncSession, invoice: Invoice, settings: StripeSettings, *, attempt: int = 1
) -> ChargeOutcome:
    """Charge the client's saved card off-session for what is open on the invoice. Skips (no
    exception) when there is nothing to charge or no card; a Stripe outage raises (the job
    retries with the same idempotency key)."""
    locked = await lock_invoice(session, invoice.id)
    try:
        amount = payable_amount(locked)
        account = await payable_account(session, locked.org_id, settings)
    except Problem as exc:
        return ChargeOutcome(status="skipped", reason=exc.type_.rsplit("/", 1)[-1] if exc.type_ else None)
    method = await active_payment_method(session, locked.client_id)
    customer_id = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.client_id == locked.client_id)
    )
    if method is None or customer_id is None:
        return ChargeOutcome(status="skipped", reason="no-saved-card")
    label = f"Invoice {locked.display_number or locked.id}"
    params = {
        "amount": amount,
        "currency": locked.currency.lower(),
        "customer": customer_id,
        "payment_method": method.stripe_payment_method_id,
        "confirm": True,
        "off_session": True,
        "description": label,
        "metadata": invoice_metadata(locked, attempt=str(attempt), purpose="auto_charge"),
    }
    gateway = stripe_gateway(settings)
    try:
        intent = await gateway.post(
            "charge",
            (locked.id, attempt, amount),
            lambda v1, o: v1.payment_intents.create_async(params, o),
            account=account.account_id,
        )
    except StripeRejected as exc:
        reason = exc.decline_code or exc.code or "card_error"
        return _failed(session, locked, reason, exc.payment_intent_id, amount, attempt)
    if intent.status == "succeeded":
        outcome = ChargeOutcome(status="succeeded", payment_intent_id=intent.id)
    elif intent.status == "processing":
        outcome = ChargeOutcome(status="processing", payment_intent_id=intent.id)
    else:  # requires_action (authentication) or requires_payment_method: the client must act
        return _failed(session, locked, "authentication_required", intent.id, amount, attempt)
    record_audit(
        session,
        None,
        "billing.card.charge",
        "invoice",
        locked.id,
        after={"amount_cents": amount, "status": outcome.status, "payment_intent_id": intent.id, "attempt": attempt},
        org_id=locked.org_id,
    )
    return outcome


def _failed(
    session: AsyncSession, invoice: Invoice, reason: str, intent_id: str | None, amount: int, attempt: int
) -> ChargeOutcome:
    emit(
        session, PaymentFailed(org_id=invoice.org_id, invoice_id=invoice.id, client_id=invoice.client_id, reason=reason)
    )
    record_audit(
        session,
        None,
        "billing.card.charge",
        "invoice",
        invoice.id,
        after={
            "amount_cents": amount,
            "status": "failed",
            "reason": reason,
            "payment_intent_id": intent_id,
            "attempt": attempt,
        },
        org_id=invoice.org_id,
    )
    logger.info("off-session charge of invoice %s failed: %s", invoice.id, reason)
    return ChargeOutcome(status="failed", payment_intent_id=intent_id, reason=reason)
