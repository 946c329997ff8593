"""The money context's tables (migration 0013). Names are shared with every billing module.

Money is integer cents (bigint). Every tenant table carries `org_id` under row-level security and
references other tenant rows by `(x_id, org_id)` so the database refuses a cross-organisation
reference. `paid_cents` / `refunded_cents` of an invoice are written only by `billing.ledger`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.mixins import AuditColumns
from advanced_alchemy.types import GUID
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key

INVOICE_STATUSES = (
    "draft",
    "issued",
    "partially_paid",
    "paid",
    "void",
    "uncollectible",
    "partially_refunded",
    "refunded",
)
LINE_KINDS = ("service", "addon", "discount", "custom", "tax")
LEDGER_KINDS = (
    "payment",
    "refund",
    "fee",
    "dispute_withdrawal",
    "dispute_reinstatement",
    "credit_issued",
    "credit_applied",
    "fee_reversal",
)
LEDGER_METHODS = ("card", "etransfer", "cash", "cheque", "credit")
LEDGER_SOURCES = ("stripe", "manual", "system")


# A number exactly when issued: drafts have none, and a draft voided before issue keeps none.
NUMBER_RULE = (
    "(number IS NULL) = (issued_at IS NULL)"
    " AND (status <> 'draft' OR number IS NULL)"
    " AND (status IN ('draft', 'void') OR number IS NOT NULL)"
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _org_pk() -> Mapped[UUID]:
    return mapped_column(GUID(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True)


class TaxRate(UUIDv7AuditBase):
    """Reference data shared by every organisation (not a tenant table): a tax's rate in a region
    over a window of dates. Windows of one (region, name) never overlap."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        CheckConstraint("rate >= 0 AND rate < 100", name="rate_range"),
        CheckConstraint("effective_to IS NULL OR effective_to >= effective_from", name="window_order"),
        CheckConstraint(_in("name", ("GST", "HST", "PST", "QST")), name="name_known"),
        ExcludeConstraint(
            ("region", "="),
            ("name", "="),
            (text("daterange(effective_from, effective_to, '[]')"), "&&"),
            name="ex_tax_rates_overlap",
            using="gist",
        ),
    )

    region: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(8))
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date, default=None)


class BillingSettings(DefaultBase, AuditColumns):
    """How an organisation bills: one row per organisation (defaults when absent)."""

    __tablename__ = "billing_settings"
    __table_args__ = (
        CheckConstraint(_in("invoicing_mode", ("per_visit", "per_period", "manual")), name="invoicing_mode_known"),
        CheckConstraint(_in("period", ("weekly", "monthly")), name="period_known"),
        CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="payment_terms_range"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint(_in("auto_charge", ("off", "on_completion", "on_issue")), name="auto_charge_known"),
        CheckConstraint(
            "followup_hold_after_step IS NULL OR followup_hold_after_step >= 1", name="hold_after_step_positive"
        ),
    )

    org_id: Mapped[UUID] = _org_pk()
    invoicing_mode: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    period: Mapped[str] = mapped_column(String(16), default="monthly", server_default="monthly")
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=14, server_default=text("14"))
    currency: Mapped[str] = mapped_column(String(3), default="CAD", server_default="CAD")
    tax_region: Mapped[str | None] = mapped_column(String(8), default=None)
    gst_hst_number: Mapped[str | None] = mapped_column(Text, default=None)
    qst_number: Mapped[str | None] = mapped_column(Text, default=None)
    pst_number: Mapped[str | None] = mapped_column(Text, default=None)
    number_prefix: Mapped[str] = mapped_column(String(16), default="INV", server_default="INV")
    auto_charge: Mapped[str] = mapped_column(String(16), default="off", server_default="off")
    followup_days: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=lambda: [1, 3, 7, 14], server_default=text("'{1,3,7,14}'")
    )
    followup_hold_after_step: Mapped[int | None] = mapped_column(Integer, default=None)


class InvoiceCounter(DefaultBase, AuditColumns):
    """The next number of one series of one organisation (gap-free: taken in the issuing transaction)."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("next_number >= 1", name="next_number_positive"),)

    org_id: Mapped[UUID] = _org_pk()
    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_number: Mapped[int] = mapped_column(Integer)


class Invoice(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "invoices"
    __table_args__ = (
        tenant_key("invoices"),
        tenant_fk("client_id", "client", ondelete="RESTRICT"),
        tenant_fk("credit_for_id", "invoices", ondelete="RESTRICT"),
        UniqueConstraint("org_id", "series", "number", name="uq_invoices_org_id_series_number"),
        CheckConstraint(_in("kind", ("invoice", "credit_note")), name="kind_known"),
        CheckConstraint(_in("status", INVOICE_STATUSES), name="status_known"),
        CheckConstraint(NUMBER_RULE, name="number_iff_issued"),
        CheckConstraint("(kind = 'credit_note') = (credit_for_id IS NOT NULL)", name="credit_note_has_invoice"),
        CheckConstraint("paid_cents >= 0 AND refunded_cents >= 0", name="ledger_amounts_not_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        Index("ix_invoices_org_id_status_due_on", "org_id", "status", "due_on"),
        Index("ix_invoices_org_id_created_at_id", "org_id", "created_at", "id"),  # keyset order of the list
        Index("ix_invoices_org_id_client_id_created_at", "org_id", "client_id", "created_at"),
    )

    client_id: Mapped[UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16), default="invoice", server_default="invoice")
    credit_for_id: Mapped[UUID | None] = mapped_column(default=None)
    series: Mapped[str] = mapped_column(String(32))
    number: Mapped[int | None] = mapped_column(Integer, default=None)
    display_number: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(24), default="draft", server_default="draft")
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    disputed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    currency: Mapped[str] = mapped_column(String(3), default="CAD", server_default="CAD")
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    due_on: Mapped[date | None] = mapped_column(Date, default=None)
    period_start: Mapped[date | None] = mapped_column(Date, default=None)
    period_end: Mapped[date | None] = mapped_column(Date, default=None)
    tax_region: Mapped[str | None] = mapped_column(String(8), default=None)
    client_name: Mapped[str] = mapped_column(Text, default="")
    client_email: Mapped[str | None] = mapped_column(Text, default=None)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    registration: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    subtotal_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class InvoiceLine(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        tenant_fk("invoice_id", "invoices", ondelete="CASCADE"),
        tenant_fk("booking_id", "booking", ondelete="SET NULL"),
        UniqueConstraint("invoice_id", "position", name="uq_invoice_lines_invoice_id_position"),
        CheckConstraint(_in("kind", LINE_KINDS), name="kind_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    invoice_id: Mapped[UUID] = mapped_column()
    position: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(16))
    booking_id: Mapped[UUID | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal(1), server_default=text("1"))
    unit_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    tax_name: Mapped[str | None] = mapped_column(String(8), default=None)
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 3), default=None)
    tax_rate_id: Mapped[UUID | None] = mapped_column(
        GUID(), ForeignKey("tax_rates.id", ondelete="RESTRICT"), default=None
    )


class InvoicedBooking(DefaultBase, AuditColumns):
    """A booking is on at most one live invoice (the row goes when that invoice is voided)."""

    __tablename__ = "invoiced_bookings"
    __table_args__ = (
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("invoice_id", "invoices", ondelete="CASCADE"),
    )

    org_id: Mapped[UUID] = _org_pk()
    booking_id: Mapped[UUID] = mapped_column(GUID(), primary_key=True)
    invoice_id: Mapped[UUID] = mapped_column(GUID(), index=True)


class LedgerEntry(UUIDv7AuditBase, TenantMixin):
    """Append-only (the app role may not update or delete): money that moved for an invoice or a
    client's credit. `amount_cents` is positive; the kind says which way it moves."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        tenant_fk("invoice_id", "invoices", ondelete="RESTRICT"),
        tenant_fk("client_id", "client", ondelete="RESTRICT"),
        UniqueConstraint("org_id", "source", "kind", "external_id", name="uq_ledger_entries_external"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind_known"),
        CheckConstraint(f"method IS NULL OR {_in('method', LEDGER_METHODS)}", name="method_known"),
        CheckConstraint(_in("source", LEDGER_SOURCES), name="source_known"),
        Index("ix_ledger_entries_invoice_id", "invoice_id"),
        Index("ix_ledger_entries_org_id_client_id", "org_id", "client_id"),
    )

    invoice_id: Mapped[UUID | None] = mapped_column(default=None)
    client_id: Mapped[UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(24))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str | None] = mapped_column(String(16), default=None)
    reference: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClientCreditAccount(DefaultBase, AuditColumns):
    """The row that serialises spending one client's credit (migration 0018): whoever applies
    credit locks it first. The balance is not kept here: it is derived from the ledger."""

    __tablename__ = "client_credit_accounts"
    __table_args__ = (tenant_fk("client_id", "client", ondelete="CASCADE"),)

    org_id: Mapped[UUID] = _org_pk()
    client_id: Mapped[UUID] = mapped_column(GUID(), primary_key=True)


class Refund(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "refunds"
    __table_args__ = (
        tenant_key("refunds"),
        tenant_fk("invoice_id", "invoices", ondelete="RESTRICT"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(_in("status", ("pending", "succeeded", "failed", "canceled")), name="status_known"),
    )

    invoice_id: Mapped[UUID] = mapped_column(index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), default=None)
    requested_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Dispute(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "disputes"
    __table_args__ = (
        tenant_key("disputes"),
        tenant_fk("invoice_id", "invoices", ondelete="RESTRICT"),
        CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    )

    invoice_id: Mapped[UUID] = mapped_column(index=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    evidence_due_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class StripeAccount(DefaultBase, AuditColumns):
    """An organisation's connected Stripe account."""

    __tablename__ = "stripe_accounts"
    __table_args__ = (
        CheckConstraint(_in("status", ("pending", "active", "restricted", "disabled")), name="status_known"),
    )

    org_id: Mapped[UUID] = _org_pk()
    account_id: Mapped[str] = mapped_column(String(255), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    # The missed-delivery job's progress (billing/recovery.py): the last complete cycle's start,
    # and a cycle that stopped at its page cap.
    events_recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    events_cycle: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)


class StripeCustomer(DefaultBase, AuditColumns):
    __tablename__ = "stripe_customers"
    __table_args__ = (tenant_fk("client_id", "client", ondelete="CASCADE"),)

    org_id: Mapped[UUID] = _org_pk()
    client_id: Mapped[UUID] = mapped_column(GUID(), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255))


class CheckoutSession(UUIDv7AuditBase, TenantMixin):
    """A Stripe Checkout Session we opened. No URL is stored (it is a bearer URL: re-read it)."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        tenant_fk("invoice_id", "invoices", ondelete="CASCADE"),
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        CheckConstraint(_in("mode", ("payment", "setup")), name="mode_known"),
        CheckConstraint(_in("status", ("open", "complete", "expired")), name="status_known"),
        Index(
            "uq_checkout_sessions_open_payment",
            "org_id",
            "invoice_id",
            unique=True,
            postgresql_where=text("mode = 'payment' AND status = 'open'"),
        ),
    )

    invoice_id: Mapped[UUID | None] = mapped_column(default=None)
    client_id: Mapped[UUID] = mapped_column()
    mode: Mapped[str] = mapped_column(String(16))
    stripe_session_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class PaymentMethod(UUIDv7AuditBase, TenantMixin):
    """A client's saved card (at most one active), with the consent to charge it off-session."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        Index(
            "uq_payment_methods_active",
            "org_id",
            "client_id",
            unique=True,
            postgresql_where=text("active"),
        ),
    )

    client_id: Mapped[UUID] = mapped_column()
    stripe_payment_method_id: Mapped[str] = mapped_column(String(255), unique=True)
    brand: Mapped[str | None] = mapped_column(String(32), default=None)
    last4: Mapped[str | None] = mapped_column(String(4), default=None)
    exp_month: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    exp_year: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    consent_text: Mapped[str | None] = mapped_column(Text, default=None)
    consent_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class InvoiceLink(UUIDv7AuditBase, TenantMixin):
    """A public link to one invoice: only the sha256 of its token is kept."""

    __tablename__ = "invoice_links"
    __table_args__ = (tenant_fk("invoice_id", "invoices", ondelete="CASCADE"),)

    invoice_id: Mapped[UUID] = mapped_column(index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)


class Followup(UUIDv7AuditBase, TenantMixin):
    """The chase of one unpaid invoice (a failed charge, or overdue): at most one active per invoice."""

    __tablename__ = "followups"
    __table_args__ = (
        tenant_key("followups"),
        tenant_fk("invoice_id", "invoices", ondelete="CASCADE"),
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        CheckConstraint(_in("reason", ("charge_failed", "overdue")), name="reason_known"),
        CheckConstraint(_in("status", ("active", "resolved", "stopped")), name="status_known"),
        Index(
            "uq_followups_active_invoice",
            "org_id",
            "invoice_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_followups_due", "next_run_at", postgresql_where=text("status = 'active'")),
    )

    invoice_id: Mapped[UUID] = mapped_column()
    client_id: Mapped[UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    hold_applied: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class FollowupStep(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "followup_steps"
    __table_args__ = (
        tenant_fk("followup_id", "followups", ondelete="CASCADE"),
        UniqueConstraint("followup_id", "step", name="uq_followup_steps_followup_id_step"),
    )

    followup_id: Mapped[UUID] = mapped_column()
    step: Mapped[int] = mapped_column(Integer)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
