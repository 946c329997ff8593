"""What happens to a booking, for other contexts to react to (invoicing, calendars, reminders,
metrics). Ids and the few facts a subscriber needs; it re-reads anything else it wants."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from spotless.lib.events import Event


class BookingEvent(Event, frozen=True, kw_only=True):
    abstract_event: ClassVar[bool] = True

    org_id: UUID
    booking_id: UUID
    series_id: UUID | None = None


class BookingCreated(BookingEvent, frozen=True, kw_only=True):
    client_id: UUID
    starts_at: datetime
    ends_at: datetime


class BookingRescheduled(BookingEvent, frozen=True, kw_only=True):
    previous_starts_at: datetime
    starts_at: datetime
    ends_at: datetime


class BookingAssignmentsChanged(BookingEvent, frozen=True, kw_only=True):
    """Workers were added to or removed from the booking; `worker_ids` is who is on it now."""

    worker_ids: list[UUID]


class BookingConfirmed(BookingEvent, frozen=True, kw_only=True):
    pass


class BookingStarted(BookingEvent, frozen=True, kw_only=True):
    pass


class BookingTravelStarted(BookingEvent, frozen=True, kw_only=True):
    """An assigned cleaner said they are on their way (the field app); once per booking."""

    worker_id: UUID
    starts_at: datetime
    travel_started_at: datetime


class BookingCompleted(BookingEvent, frozen=True, kw_only=True):
    completed_at: datetime


class BookingCancelled(BookingEvent, frozen=True, kw_only=True):
    reason: str | None = None


class BookingNoShow(BookingEvent, frozen=True, kw_only=True):
    pass


# The event a status change announces (a state not listed announces nothing).
STATUS_EVENTS: dict[str, type[BookingEvent]] = {
    "confirmed": BookingConfirmed,
    "in_progress": BookingStarted,
    "completed": BookingCompleted,
    "cancelled": BookingCancelled,
    "no_show": BookingNoShow,
}


class SeriesPaused(Event, frozen=True, kw_only=True):
    """A hold stops a series from `starts_on` through `ends_on` (local dates); its visits in the
    window were cancelled, each with its own `BookingCancelled`."""

    org_id: UUID
    series_id: UUID
    hold_id: UUID
    starts_on: date
    ends_on: date


class SeriesResumed(Event, frozen=True, kw_only=True):
    """A hold was lifted early: from `resumed_on` the series books again."""

    org_id: UUID
    series_id: UUID
    hold_id: UUID
    resumed_on: date


class ClientVisitsHeld(Event, frozen=True, kw_only=True):
    """The client's visits not started yet went on payment hold (kept in the schedule, no cleaner
    sent) because of an unpaid invoice; `booking_ids` are the visits newly held."""

    org_id: UUID
    client_id: UUID
    invoice_id: UUID
    booking_ids: list[UUID]


class ClientVisitsReleased(Event, frozen=True, kw_only=True):
    """The last invoice holding the client was settled: `booking_ids` go back to the field."""

    org_id: UUID
    client_id: UUID
    invoice_id: UUID
    booking_ids: list[UUID]
