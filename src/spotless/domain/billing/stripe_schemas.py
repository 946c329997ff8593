"""Bodies of the Stripe routes (Connect, Checkout, saved cards)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from spotless.domain.billing.models import PaymentMethod, StripeAccount
from spotless.lib.schema import Output

AccountStatus = Literal["not_connected", "pending", "active", "restricted", "disabled"]


class StripeAccountRead(Output):
    connected: bool
    status: AccountStatus
    account_id: str | None
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: list[str]
    synced: bool

    @classmethod
    def from_row(cls, row: StripeAccount | None, requirements: list[str], synced: bool) -> StripeAccountRead:
        if row is None:
            return cls(
                connected=False,
                status="not_connected",
                account_id=None,
                charges_enabled=False,
                payouts_enabled=False,
                details_submitted=False,
                requirements_due=[],
                synced=synced,
            )
        return cls(
            connected=True,
            status=row.status,  # type: ignore[arg-type]
            account_id=row.account_id,
            charges_enabled=row.charges_enabled,
            payouts_enabled=row.payouts_enabled,
            details_submitted=row.details_submitted,
            requirements_due=requirements,
            synced=synced,
        )


class OnboardingLinkRead(Output):
    """A Stripe onboarding link: single use, short-lived; open it in the browser right away."""

    url: str
    expires_at: datetime
    account: StripeAccountRead


class CheckoutRead(Output):
    """Where the payer pays the invoice (a Stripe Checkout page; a bearer URL: do not share)."""

    url: str
    amount_cents: int
    currency: str
    expires_at: datetime
    reused: bool


class CardSetupRead(Output):
    """A Stripe Checkout page where the client saves a card (a bearer URL: send it to them only)."""

    url: str
    expires_at: datetime


class PaymentMethodRead(Output):
    id: UUID
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    consent_at: datetime | None
    consent_text: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: PaymentMethod) -> PaymentMethodRead:
        return cls(
            id=row.id,
            brand=row.brand,
            last4=row.last4,
            exp_month=row.exp_month,
            exp_year=row.exp_year,
            consent_at=row.consent_at,
            consent_text=row.consent_text,
            created_at=row.created_at,
        )
