"""What happens to money, for other contexts (and billing's own jobs) to react to. Ids and the
few facts a subscriber needs; it re-reads anything else."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from spotless.lib.events import Event


class InvoiceEvent(Event, frozen=True, kw_only=True):
    abstract_event: ClassVar[bool] = True

    org_id: UUID
    invoice_id: UUID


class InvoiceIssued(InvoiceEvent, frozen=True, kw_only=True):
    client_id: UUID
    total_cents: int


class InvoicePaid(InvoiceEvent, frozen=True, kw_only=True):
    client_id: UUID


class InvoiceVoided(InvoiceEvent, frozen=True, kw_only=True):
    pass


class InvoiceOverdue(InvoiceEvent, frozen=True, kw_only=True):
    client_id: UUID


class PaymentRecorded(InvoiceEvent, frozen=True, kw_only=True):
    client_id: UUID
    amount_cents: int
    method: str | None = None


class PaymentFailed(InvoiceEvent, frozen=True, kw_only=True):
    client_id: UUID
    reason: str | None = None


class RefundSucceeded(InvoiceEvent, frozen=True, kw_only=True):
    refund_id: UUID
    amount_cents: int


class DisputeOpened(InvoiceEvent, frozen=True, kw_only=True):
    dispute_id: UUID
    evidence_due_by: datetime | None = None


class DisputeClosed(InvoiceEvent, frozen=True, kw_only=True):
    dispute_id: UUID
    outcome: str | None = None


class PaymentHoldRequested(Event, frozen=True, kw_only=True):
    org_id: UUID
    client_id: UUID
    invoice_id: UUID


class PaymentHoldReleased(Event, frozen=True, kw_only=True):
    org_id: UUID
    client_id: UUID
    invoice_id: UUID
