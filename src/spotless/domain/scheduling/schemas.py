"""Request and response bodies. Instants go out in the organisation's zone (the offset shows);
instants coming in must carry an offset (a bare local time is ambiguous across DST)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.domain.catalog.pricing import PricingParams
from spotless.lib.bounds import Day, Instant

AwareDatetime = Instant
Reason = Annotated[str, Meta(min_length=1, max_length=1000)]
Notes = Annotated[str, Meta(max_length=5000)]
# "HH:MM" local wall-clock (seconds allowed only as ":00").
Clock = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:00)?$", examples=["09:00"])]
WorkerIds = Annotated[list[UUID], Meta(max_length=20)]
AddonIds = Annotated[list[UUID], Meta(max_length=50)]


class Override(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Book outside working hours or over time off anyway (needs `bookings.assign`; audited)."""

    reason: Reason


class BookingCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    client_id: UUID
    address_id: UUID
    service_id: UUID
    starts_at: AwareDatetime
    worker_ids: WorkerIds = []
    team_id: UUID | None = None
    # Defaults to the address's bedrooms, bathrooms and square feet.
    params: PricingParams | None = None
    addon_ids: AddonIds = []
    notes: Notes | None = None
    override: Override | None = None


class Price(msgspec.Struct, frozen=True, kw_only=True):
    """The quote snapshotted when the booking was made (or last re-priced)."""

    currency: str
    line_items: list[dict[str, Any]]
    subtotal_cents: int
    discount_cents: int
    tax_cents: int
    total_cents: int


class BookingOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    client_id: UUID
    address_id: UUID
    service_id: UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    estimated_minutes: int
    worker_ids: list[UUID]
    total_cents: int
    currency: str
    price: Price
    params: dict[str, Any]
    addon_ids: list[UUID]
    frequency: str
    created_at: datetime
    updated_at: datetime
    team_id: UUID | None = None
    series_id: UUID | None = None
    occurrence_date: date | None = None
    notes: str | None = None
    cancel_reason: str | None = None
    override_reason: str | None = None
    confirmed_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None


class Reschedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    starts_at: AwareDatetime
    override: Override | None = None


class Assign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    worker_ids: Annotated[list[UUID], Meta(min_length=1, max_length=20)]
    override: Override | None = None


class Unassign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    worker_ids: Annotated[list[UUID], Meta(min_length=1, max_length=20)]


class Cancel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class AvailabilitySlot(msgspec.Struct, frozen=True, kw_only=True):
    starts_at: datetime
    ends_at: datetime
    worker_ids: list[UUID]


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    service_id: UUID
    timezone: str
    date_from: date
    date_to: date
    duration_minutes: int
    step_minutes: int
    buffer_minutes: int
    slots: list[AvailabilitySlot]


class SchedulingSettingsOut(msgspec.Struct, frozen=True, kw_only=True):
    travel_buffer_minutes: int
    slot_step_minutes: int


class SchedulingSettingsUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    travel_buffer_minutes: Annotated[int, Meta(ge=0, le=240)] | None = None
    slot_step_minutes: Annotated[int, Meta(ge=5, le=240)] | None = None


# --- recurring ---------------------------------------------------------------------------------


class SeriesCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    client_id: UUID
    address_id: UUID
    service_id: UUID
    frequency: Literal["weekly", "monthly"]
    start_date: Day
    # Local wall-clock time in the organisation's zone ("09:00" stays 09:00 across DST).
    start_time: Clock
    interval: Annotated[int, Meta(ge=1, le=52)] = 1
    day_of_month: Annotated[int, Meta(ge=1, le=31)] | None = None
    until: Day | None = None
    count: Annotated[int, Meta(ge=1, le=1000)] | None = None
    duration_minutes: Annotated[int, Meta(ge=15, le=24 * 60)] | None = None
    worker_ids: WorkerIds = []
    team_id: UUID | None = None
    params: PricingParams | None = None
    addon_ids: AddonIds = []
    notes: Notes | None = None


class SeriesOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    client_id: UUID
    address_id: UUID
    service_id: UUID
    frequency: str
    interval: int
    start_date: date
    start_time: str
    timezone: str
    worker_ids: list[UUID]
    status: str
    params: dict[str, Any]
    addon_ids: list[UUID]
    created_at: datetime
    day_of_month: int | None = None
    until: date | None = None
    duration_minutes: int | None = None
    team_id: UUID | None = None
    notes: str | None = None
    materialised_until: date | None = None
    parent_series_id: UUID | None = None
    # Set while the periodic materialiser cannot book this series (e.g. its service was
    # deactivated); cleared by its next success. Nothing is skipped meanwhile.
    materialise_error: MaterialiseErrorOut | None = None


class MaterialiseErrorOut(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # a problem slug such as "service-inactive", or "error"
    detail: str
    failed_at: datetime


class SeriesConflictOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    series_id: UUID
    occurrence_date: date
    starts_at: datetime
    ends_at: datetime
    reason: str
    worker_id: UUID | None = None
    conflicting_booking_id: UUID | None = None
    detail: str | None = None


class SeriesResult(msgspec.Struct, frozen=True, kw_only=True):
    """A series after a create or an edit: the occurrences booked by this request and the ones
    that could not be (also listed at /v1/series/{id}/conflicts)."""

    series: SeriesOut
    booking_ids: list[UUID]
    conflicts: list[SeriesConflictOut]
    # Set when a this-and-following edit split the series: the series that carries on.
    previous_series_id: UUID | None = None


class OccurrenceEdit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scope: Literal["this", "following"]
    start_time: Clock | None = None
    # scope=this only: move this one visit to another day.
    move_to: Day | None = None
    duration_minutes: Annotated[int, Meta(ge=15, le=24 * 60)] | None = None
    worker_ids: WorkerIds | None = None
    notes: Notes | None = None
    # scope=this only (a split reports its conflicts instead): as for a one-off booking.
    override: Override | None = None


class OccurrenceCancel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scope: Literal["this", "following"]
    reason: Reason


# --- field -------------------------------------------------------------------------------------


class TimeEntryOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    booking_id: UUID
    worker_id: UUID
    started_at: datetime
    ended_at: datetime | None = None


class FieldAddress(msgspec.Struct, frozen=True, kw_only=True):
    line1: str
    city: str
    country: str
    line2: str | None = None
    region: str | None = None
    postal_code: str | None = None
    notes: str | None = None


class WorkerJob(msgspec.Struct, frozen=True, kw_only=True):
    booking_id: UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    planned_minutes: int
    worked_minutes: int
    # not_started | working | paused | finished: this worker's own progress on the job.
    state: str
    client_id: UUID
    service_id: UUID
    address: FieldAddress | None = None
    notes: str | None = None
    entries: list[TimeEntryOut] = []


class FieldAction(msgspec.Struct, frozen=True, kw_only=True):
    job: WorkerJob
    # The entry this action opened or closed (start returns the same entry when repeated).
    entry: TimeEntryOut | None = None


class Finish(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason | None = None
