"""The event types integrators may subscribe to: stable public names, each one domain event.

The public name is a contract (integrators key on it), so it is spelled here, never derived from
our class names; an internal event (payment holds, probes, our own webhook events) is simply not
listed. The body's `data` is the event's facts without `org_id` (the receiver knows whose it is):
ids, amounts, times, never secrets."""

from __future__ import annotations

from typing import Any

import msgspec

from spotless.domain.billing import events as billing
from spotless.domain.clients import events as clients
from spotless.domain.scheduling import events as scheduling
from spotless.lib.events import Event

PUBLIC_EVENTS: dict[str, tuple[type[Event], str]] = {
    "booking.created": (scheduling.BookingCreated, "A booking was made"),
    "booking.rescheduled": (scheduling.BookingRescheduled, "A booking moved to another time"),
    "booking.confirmed": (scheduling.BookingConfirmed, "A booking was confirmed"),
    "booking.started": (scheduling.BookingStarted, "The cleaner started the job"),
    "booking.completed": (scheduling.BookingCompleted, "The job was finished"),
    "booking.cancelled": (scheduling.BookingCancelled, "A booking was cancelled"),
    "booking.no_show": (scheduling.BookingNoShow, "Nobody was there to let the cleaner in"),
    "series.paused": (scheduling.SeriesPaused, "A recurring series was put on hold"),
    "series.resumed": (scheduling.SeriesResumed, "A recurring series' hold was lifted"),
    "client.archived": (clients.ClientArchived, "A client was archived"),
    "invoice.issued": (billing.InvoiceIssued, "An invoice was issued"),
    "invoice.paid": (billing.InvoicePaid, "An invoice was paid in full"),
    "invoice.voided": (billing.InvoiceVoided, "An invoice was voided"),
    "invoice.overdue": (billing.InvoiceOverdue, "An invoice went past its due date"),
    "payment.recorded": (billing.PaymentRecorded, "A payment was recorded on an invoice"),
    "payment.failed": (billing.PaymentFailed, "A card payment failed"),
    "refund.succeeded": (billing.RefundSucceeded, "A refund went through"),
    "dispute.opened": (billing.DisputeOpened, "A card payment was disputed"),
    "dispute.closed": (billing.DisputeClosed, "A dispute was closed"),
}
PUBLIC_NAME: dict[str, str] = {cls.event_name: name for name, (cls, _) in PUBLIC_EVENTS.items()}
EVENT_TYPE_NAMES: tuple[str, ...] = tuple(sorted(PUBLIC_EVENTS))


def public_data(event: Event) -> dict[str, Any]:
    data = msgspec.to_builtins(event)
    data.pop("org_id", None)
    return data
