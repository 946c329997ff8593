"""Stripe routes: the organisation's connected account, card payment of an invoice, saved cards.

Every answer carrying a Stripe URL is a bearer link: it is answered (no-store), never stored
or logged. While Stripe is unreachable these routes answer 503 /problems/payments-unavailable
with Retry-After, fast (see billing/stripe_client.py)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import cards, checkout, connect
from spotless.domain.billing.models import Invoice
from spotless.domain.billing.stripe_schemas import (
    CardSetupRead,
    CheckoutRead,
    OnboardingLinkRead,
    PaymentMethodRead,
    StripeAccountRead,
)
from spotless.domain.clients.public import client_contact
from spotless.domain.identity.public import OrgProfile, Principal
from spotless.lib.errors import not_found
from spotless.lib.query import get_or_404
from spotless.settings import Settings

VIEW = {"permission": "finance.view"}
MANAGE = {"permission": "finance.manage"}


class StripeAccountController(Controller):
    path = "/v1/billing/stripe"
    tags = ["billing"]

    @post(
        "/connect",
        operation_id="connectStripeAccount",
        summary="Connect the organisation's Stripe account (created on first use) and get an onboarding link",
        status_code=200,
        opt=MANAGE,
    )
    async def connect(self, db_session: AsyncSession, principal: Principal, settings: Settings) -> OnboardingLinkRead:
        row, url, expires_at = await connect.connect_account(db_session, principal, settings.stripe)
        return OnboardingLinkRead(
            url=url, expires_at=expires_at, account=StripeAccountRead.from_row(row, [], synced=True)
        )

    @get(
        "/account",
        operation_id="getStripeAccount",
        summary="The organisation's Stripe account and whether it can take card payments (read from Stripe)",
        opt=VIEW,
    )
    async def account(self, db_session: AsyncSession, principal: Principal, settings: Settings) -> StripeAccountRead:
        row, due, synced = await connect.account_status(db_session, principal.org_id, settings.stripe)
        return StripeAccountRead.from_row(row, due, synced)


class InvoiceCheckoutController(Controller):
    path = "/v1/invoices"
    tags = ["billing"]

    @post(
        "/{invoice_id:uuid}/checkout",
        operation_id="openInvoiceCheckout",
        summary="A Stripe Checkout page to pay what is open on the invoice (the open one is reused)",
        status_code=200,
        opt=MANAGE,
    )
    async def open_checkout(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, invoice_id: UUID
    ) -> CheckoutRead:
        invoice = await get_or_404(db_session, Invoice, invoice_id, "invoice")
        link = await checkout.open_checkout(db_session, invoice, settings.stripe, actor=principal)
        return CheckoutRead(
            url=link.url,
            amount_cents=link.amount_cents,
            currency=link.currency,
            expires_at=link.expires_at,
            reused=link.reused,
        )


class ClientCardController(Controller):
    path = "/v1/clients"
    tags = ["billing"]

    @post(
        "/{client_id:uuid}/card-setup",
        operation_id="startClientCardSetup",
        summary="A Stripe Checkout page where the client saves a card and consents to automatic charges",
        status_code=200,
        opt=MANAGE,
    )
    async def card_setup(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, settings: Settings, client_id: UUID
    ) -> CardSetupRead:
        contact = await client_contact(db_session, client_id)
        if contact is None:
            raise not_found("client")
        name, email = contact
        link = await cards.start_card_setup(
            db_session,
            principal,
            client_id,
            settings.stripe,
            business=org.name,
            client_name=name,
            client_email=email,
        )
        return CardSetupRead(url=link.url, expires_at=link.expires_at)

    @get(
        "/{client_id:uuid}/payment-methods",
        operation_id="listClientPaymentMethods",
        summary="The client's saved card (with the consent they gave)",
        opt=VIEW,
    )
    async def payment_methods(self, db_session: AsyncSession, client_id: UUID) -> list[PaymentMethodRead]:
        if await client_contact(db_session, client_id) is None:
            raise not_found("client")
        return [PaymentMethodRead.from_model(m) for m in await cards.list_payment_methods(db_session, client_id)]

    @delete(
        "/{client_id:uuid}/payment-methods/{method_id:uuid}",
        operation_id="removeClientPaymentMethod",
        summary="Remove a saved card: it is never charged again",
        opt=MANAGE,
    )
    async def remove_payment_method(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, client_id: UUID, method_id: UUID
    ) -> None:
        await cards.remove_payment_method(db_session, principal, client_id, method_id, settings.stripe)
