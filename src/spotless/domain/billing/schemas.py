"""Request and response bodies of billing's settings, invoices and manual payments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta

from spotless.lib.schema import UNSET, Ids, Input, Instant, Name, Notes, Output, Reason, UnsetType

# Invoices may be far larger than one visit's quote: up to 10 million (in cents) per line.
LineCents = Annotated[int, Meta(ge=-100_000_000, le=100_000_000, description="minor units; negative for a discount")]
Quantity = Annotated[Decimal, Meta(description="more than 0, at most 10000, up to 2 decimals")]
PaymentCents = Annotated[int, Meta(ge=1, le=1_000_000_000, description="minor units of the invoice's currency")]
Region = Annotated[str, Meta(pattern=r"^[A-Za-z]{2}$", description="province or territory code, e.g. ON")]
Registration = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9 \-]+$",
        description="a tax registration number: letters, digits, spaces and dashes",
        examples=["123456789 RT0001"],
    ),
]
Reference = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]

InvoicingMode = Literal["per_visit", "per_period", "manual"]
Period = Literal["weekly", "monthly"]
AutoCharge = Literal["off", "on_completion", "on_issue"]
ManualMethod = Literal["etransfer", "cash", "cheque"]


# --- settings ----------------------------------------------------------------------------------


class BillingSettingsRead(Output):
    invoicing_mode: str
    period: str
    payment_terms_days: int
    currency: str
    tax_region: str | None
    gst_hst_number: str | None
    qst_number: str | None
    pst_number: str | None
    number_prefix: str
    auto_charge: str
    followup_days: list[int]
    followup_hold_after_step: int | None

    @classmethod
    def from_model(cls, row: Any) -> BillingSettingsRead:
        return cls(
            invoicing_mode=row.invoicing_mode,
            period=row.period,
            payment_terms_days=row.payment_terms_days,
            currency=row.currency,
            tax_region=row.tax_region,
            gst_hst_number=row.gst_hst_number,
            qst_number=row.qst_number,
            pst_number=row.pst_number,
            number_prefix=row.number_prefix,
            auto_charge=row.auto_charge,
            followup_days=list(row.followup_days or []),
            followup_hold_after_step=row.followup_hold_after_step,
        )


class BillingSettingsUpdate(Input):
    """Only the fields sent change; `null` clears a nullable one."""

    invoicing_mode: InvoicingMode | UnsetType = UNSET
    period: Period | UnsetType = UNSET
    payment_terms_days: Annotated[int, Meta(ge=0, le=365)] | UnsetType = UNSET
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["CAD"])] | UnsetType = (
        UNSET
    )
    tax_region: Region | UnsetType | None = UNSET
    gst_hst_number: Registration | UnsetType | None = UNSET
    qst_number: Registration | UnsetType | None = UNSET
    pst_number: Registration | UnsetType | None = UNSET
    number_prefix: (
        Annotated[
            str, Meta(pattern=r"^[A-Z0-9]{1,10}$", description="1 to 10 capital letters or digits", examples=["INV"])
        ]
        | UnsetType
    ) = UNSET
    auto_charge: AutoCharge | UnsetType = UNSET
    followup_days: Annotated[list[Annotated[int, Meta(ge=1, le=365)]], Meta(max_length=10)] | UnsetType = UNSET
    followup_hold_after_step: Annotated[int, Meta(ge=1, le=10)] | UnsetType | None = UNSET


# --- invoices ----------------------------------------------------------------------------------


class LineInput(Input):
    description: Name
    unit_cents: LineCents
    quantity: Quantity = Decimal(1)
    kind: Literal["custom", "service", "addon", "discount"] = "custom"


Lines = Annotated[list[LineInput], Meta(max_length=200)]


class InvoiceCreate(Input):
    """A draft: free lines, or `booking_ids` (completed visits of this client) whose price
    snapshots become the lines; both may be given (free lines come after the visits')."""

    client_id: UUID
    lines: Lines = []
    booking_ids: Ids = []
    notes: Notes | None = None


class InvoiceUpdate(Input):
    """A draft's changes: `lines` replaces every line sent by hand or from visits."""

    lines: Lines | UnsetType = UNSET
    notes: Notes | UnsetType | None = UNSET


class InvoiceVoid(Input):
    reason: Reason


class InvoiceUncollectible(Input):
    reason: Reason | None = None


class CreditNoteCreate(Input):
    """Lines credited (positive amounts), taxed at the invoice's own snapshotted rates."""

    lines: Annotated[list[LineInput], Meta(min_length=1, max_length=200)]
    reason: Reason


class PaymentCreate(Input):
    amount_cents: PaymentCents
    method: ManualMethod
    reference: Reference | None = None
    received_at: Instant | None = None
    # Take more than is owed and keep the excess as the client's credit (else 409).
    keep_as_credit: bool = False


class InvoiceLineRead(Output):
    id: UUID
    position: int
    kind: str
    booking_id: UUID | None
    description: str
    quantity: str
    unit_cents: int
    amount_cents: int
    tax_name: str | None
    tax_rate: str | None

    @classmethod
    def from_model(cls, line: Any) -> InvoiceLineRead:
        return cls(
            id=line.id,
            position=line.position,
            kind=line.kind,
            booking_id=line.booking_id,
            description=line.description,
            quantity=f"{Decimal(line.quantity).normalize():f}",
            unit_cents=line.unit_cents,
            amount_cents=line.amount_cents,
            tax_name=line.tax_name,
            tax_rate=None if line.tax_rate is None else f"{Decimal(line.tax_rate).normalize():f}",
        )


class InvoiceSummary(Output):
    """One invoice in a list (no lines)."""

    id: UUID
    kind: str
    client_id: UUID
    credit_for_id: UUID | None
    number: int | None
    display_number: str | None
    status: str
    overdue: bool
    disputed: bool
    currency: str
    issued_at: datetime | None
    due_on: date | None
    client_name: str
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    paid_cents: int
    refunded_cents: int
    open_cents: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, row: Any) -> dict[str, Any]:
        frozen = row.status in ("draft", "void", "uncollectible") or row.kind == "credit_note"
        return {
            "id": row.id,
            "kind": row.kind,
            "client_id": row.client_id,
            "credit_for_id": row.credit_for_id,
            "number": row.number,
            "display_number": row.display_number,
            "status": row.status,
            "overdue": row.overdue,
            "disputed": row.disputed,
            "currency": row.currency,
            "issued_at": row.issued_at,
            "due_on": row.due_on,
            "client_name": row.client_name,
            "subtotal_cents": row.subtotal_cents,
            "tax_cents": row.tax_cents,
            "total_cents": row.total_cents,
            "paid_cents": row.paid_cents,
            "refunded_cents": row.refunded_cents,
            "open_cents": 0 if frozen else max(row.total_cents - row.paid_cents, 0),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    @classmethod
    def from_row(cls, row: Any) -> InvoiceSummary:
        return cls(**cls.fields_of(row))


class InvoiceRead(InvoiceSummary):
    """An invoice with its lines and what was printed on it."""

    lines: list[InvoiceLineRead]
    booking_ids: list[UUID]
    client_email: str | None
    billing_address: dict[str, Any] | None
    registration: dict[str, Any] | None
    tax_region: str | None
    period_start: date | None
    period_end: date | None
    notes: str | None
    voided_at: datetime | None
    void_reason: str | None
    version: int

    @classmethod
    def of(cls, invoice: Any, lines: list[Any], booking_ids: list[UUID]) -> InvoiceRead:
        return cls(
            **cls.fields_of(invoice),
            lines=[InvoiceLineRead.from_model(line) for line in lines],
            booking_ids=booking_ids,
            client_email=invoice.client_email,
            billing_address=invoice.billing_address,
            registration=invoice.registration,
            tax_region=invoice.tax_region,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            notes=invoice.notes,
            voided_at=invoice.voided_at,
            void_reason=invoice.void_reason,
            version=invoice.version,
        )


class PaymentRead(Output):
    """What a recorded payment did: the invoice after it, and any excess kept as credit."""

    invoice: InvoiceRead
    applied_cents: int
    credited_cents: int
    client_credit_cents: int


__all__ = [
    "BillingSettingsRead",
    "BillingSettingsUpdate",
    "CreditNoteCreate",
    "InvoiceCreate",
    "InvoiceLineRead",
    "InvoiceRead",
    "InvoiceSummary",
    "InvoiceUncollectible",
    "InvoiceUpdate",
    "InvoiceVoid",
    "LineInput",
    "PaymentCreate",
    "PaymentRead",
]
