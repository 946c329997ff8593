"""Request and response bodies, and the one mapping of each model to what is answered.

Instants go out in the organisation's zone (the offset shows); instants coming in must carry an
offset (a bare local time is ambiguous across DST)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec import Meta

from spotless.domain.catalog.public import PricingParams
from spotless.domain.scheduling import timeutil
from spotless.lib.schema import Clock, Day, Ids, Input, Instant, Notes, Output, Reason

if TYPE_CHECKING:
    from collections.abc import Sequence

    from spotless.domain.scheduling.context import OrgContext
    from spotless.domain.scheduling.models import (
        Booking,
        BookingSeries,
        SchedulingSettings,
        SeriesConflict,
        SeriesHold,
        TimeEntry,
    )

WorkerIds = Annotated[list[UUID], Meta(max_length=20)]
SomeWorkerIds = Annotated[list[UUID], Meta(min_length=1, max_length=20)]
Duration = Annotated[int, Meta(ge=15, le=24 * 60)]


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return timeutil.local(value, tz) if value else None


class Override(Input):
    """Book outside working hours or over time off anyway (needs `bookings.assign`; audited)."""

    reason: Reason


# --- bookings ----------------------------------------------------------------------------------


class BookingCreate(Input):
    client_id: UUID
    address_id: UUID
    service_id: UUID
    starts_at: Instant
    worker_ids: WorkerIds = []
    team_id: UUID | None = None
    # Defaults to the address's bedrooms, bathrooms and square feet.
    params: PricingParams | None = None
    addon_ids: Ids = []
    notes: Notes | None = None
    override: Override | None = None


class Price(Output):
    """The quote snapshotted when the booking was made (or last re-priced)."""

    currency: str
    line_items: list[dict[str, Any]]
    subtotal_cents: int
    discount_cents: int
    tax_cents: int
    total_cents: int

    @classmethod
    def from_model(cls, booking: Any) -> Price:
        """`booking`: the model or a row with its columns by name."""
        snapshot = booking.price or {}
        return cls(
            currency=booking.currency,
            line_items=list(snapshot.get("line_items", [])),
            subtotal_cents=int(snapshot.get("subtotal_cents", booking.total_cents)),
            discount_cents=int(snapshot.get("discount_cents", 0)),
            tax_cents=int(snapshot.get("tax_cents", 0)),
            total_cents=booking.total_cents,
        )


class BookingRead(Output):
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
    # The client owes money: the visit keeps its slot and cleaners, but nobody is sent.
    payment_hold: bool = False

    @classmethod
    def from_model(cls, booking: Booking, worker_ids: Sequence[UUID], ctx: OrgContext) -> BookingRead:
        """After a write: the ORM row and its assignments' workers (`worker_ids`)."""
        return cls._of(booking, worker_ids, ctx)

    @classmethod
    def from_row(cls, row: Any, ctx: OrgContext) -> BookingRead:
        """On a read: a row of `bookings.BOOKING_COLUMNS` (the booking's columns by name plus
        `worker_ids`, aggregated in the same statement). Answers what `from_model` does."""
        return cls._of(row, row.worker_ids or (), ctx)

    @classmethod
    def _of(cls, booking: Any, worker_ids: Sequence[UUID], ctx: OrgContext) -> BookingRead:
        # The one mapping: `booking` is a model or a row with the same attribute names.
        tz = ctx.tz
        return cls(
            id=booking.id,
            client_id=booking.client_id,
            address_id=booking.address_id,
            service_id=booking.service_id,
            status=booking.status,
            starts_at=timeutil.local(booking.starts_at, tz),
            ends_at=timeutil.local(booking.ends_at, tz),
            timezone=ctx.tz_name,
            estimated_minutes=booking.estimated_minutes,
            worker_ids=list(worker_ids),
            total_cents=booking.total_cents,
            currency=booking.currency,
            price=Price.from_model(booking),
            params=dict(booking.params or {}),
            addon_ids=[UUID(a) for a in booking.addon_ids or []],
            frequency=booking.frequency,
            created_at=booking.created_at,
            updated_at=booking.updated_at,
            team_id=booking.team_id,
            series_id=booking.series_id,
            occurrence_date=booking.occurrence_date,
            notes=booking.notes,
            cancel_reason=booking.cancel_reason,
            override_reason=booking.override_reason,
            confirmed_at=_local(booking.confirmed_at, tz),
            started_at=_local(booking.started_at, tz),
            completed_at=_local(booking.completed_at, tz),
            cancelled_at=_local(booking.cancelled_at, tz),
            payment_hold=bool(booking.payment_hold),
        )


class BookingReschedule(Input):
    starts_at: Instant
    override: Override | None = None


class BookingAssign(Input):
    worker_ids: SomeWorkerIds
    override: Override | None = None


class BookingUnassign(Input):
    worker_ids: SomeWorkerIds


class BookingCancel(Input):
    reason: Reason


# --- availability and settings -----------------------------------------------------------------


class AvailabilitySlot(Output):
    starts_at: datetime
    ends_at: datetime
    worker_ids: list[UUID]


class Availability(Output):
    service_id: UUID
    timezone: str
    date_from: date
    date_to: date
    duration_minutes: int
    step_minutes: int
    buffer_minutes: int
    slots: list[AvailabilitySlot]


class SchedulingSettingsRead(Output):
    travel_buffer_minutes: int
    slot_step_minutes: int

    @classmethod
    def from_model(cls, settings: SchedulingSettings) -> SchedulingSettingsRead:
        return cls(travel_buffer_minutes=settings.travel_buffer_minutes, slot_step_minutes=settings.slot_step_minutes)


class SchedulingSettingsUpdate(Input):
    travel_buffer_minutes: Annotated[int, Meta(ge=0, le=240)] | None = None
    slot_step_minutes: Annotated[int, Meta(ge=5, le=240)] | None = None


# --- recurring ---------------------------------------------------------------------------------


class SeriesCreate(Input):
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
    duration_minutes: Duration | None = None
    worker_ids: WorkerIds = []
    team_id: UUID | None = None
    params: PricingParams | None = None
    addon_ids: Ids = []
    notes: Notes | None = None


class MaterialiseErrorRead(Output):
    reason: str  # a problem slug such as "service-inactive", or "error"
    detail: str
    failed_at: datetime

    @classmethod
    def from_model(cls, series: BookingSeries) -> MaterialiseErrorRead | None:
        """Why the periodic materialiser last failed on this series (stored as "reason: detail")."""
        if series.materialise_error is None or series.materialise_failed_at is None:
            return None
        reason, _, detail = series.materialise_error.partition(": ")
        return cls(reason=reason, detail=detail or reason, failed_at=series.materialise_failed_at)


class SeriesRead(Output):
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
    materialise_error: MaterialiseErrorRead | None = None

    @classmethod
    def from_model(cls, series: BookingSeries) -> SeriesRead:
        return cls(
            id=series.id,
            client_id=series.client_id,
            address_id=series.address_id,
            service_id=series.service_id,
            frequency=series.frequency,
            interval=series.interval,
            start_date=series.anchor_date,
            start_time=series.start_time.strftime("%H:%M"),
            timezone=series.timezone,
            worker_ids=list(series.worker_ids or []),
            status=series.status,
            params=dict(series.params or {}),
            addon_ids=[UUID(a) for a in series.addon_ids or []],
            created_at=series.created_at,
            day_of_month=series.day_of_month,
            until=series.until_date,
            duration_minutes=series.duration_minutes,
            team_id=series.team_id,
            notes=series.notes,
            materialised_until=series.materialised_until,
            parent_series_id=series.parent_series_id,
            materialise_error=MaterialiseErrorRead.from_model(series),
        )


class SeriesConflictRead(Output):
    id: UUID
    series_id: UUID
    occurrence_date: date
    starts_at: datetime
    ends_at: datetime
    reason: str
    worker_id: UUID | None = None
    conflicting_booking_id: UUID | None = None
    detail: str | None = None

    @classmethod
    def from_model(cls, row: SeriesConflict, ctx: OrgContext) -> SeriesConflictRead:
        return cls(
            id=row.id,
            series_id=row.series_id,
            occurrence_date=row.occurrence_date,
            starts_at=timeutil.local(row.starts_at, ctx.tz),
            ends_at=timeutil.local(row.ends_at, ctx.tz),
            reason=row.reason,
            worker_id=row.worker_id,
            conflicting_booking_id=row.conflicting_booking_id,
            detail=row.detail,
        )


class SeriesResult(Output):
    """A series after a create or an edit: the occurrences booked by this request and the ones
    that could not be (also listed at /v1/series/{id}/conflicts)."""

    series: SeriesRead
    booking_ids: list[UUID]
    conflicts: list[SeriesConflictRead]
    # Set when a this-and-following edit split the series: the series that carries on.
    previous_series_id: UUID | None = None


class OccurrenceEdit(Input):
    scope: Literal["this", "following"]
    start_time: Clock | None = None
    # scope=this only: move this one visit to another day.
    move_to: Day | None = None
    duration_minutes: Duration | None = None
    worker_ids: WorkerIds | None = None
    notes: Notes | None = None
    # scope=this only (a split reports its conflicts instead): as for a one-off booking.
    override: Override | None = None


class OccurrenceCancel(Input):
    scope: Literal["this", "following"]
    reason: Reason


# --- field -------------------------------------------------------------------------------------


class TimeEntryRead(Output):
    id: UUID
    booking_id: UUID
    worker_id: UUID
    started_at: datetime
    ended_at: datetime | None = None

    @classmethod
    def from_model(cls, entry: TimeEntry, tz: ZoneInfo) -> TimeEntryRead:
        return cls(
            id=entry.id,
            booking_id=entry.booking_id,
            worker_id=entry.worker_id,
            started_at=timeutil.local(entry.started_at, tz),
            ended_at=_local(entry.ended_at, tz),
        )


class FieldAddress(Output):
    line1: str
    city: str
    country: str
    line2: str | None = None
    region: str | None = None
    postal_code: str | None = None
    notes: str | None = None


class WorkerJobRead(Output):
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
    entries: list[TimeEntryRead] = []
    # When a cleaner on the job said they were on their way (POST .../travel), local time.
    travel_started_at: datetime | None = None


class FieldAction(Output):
    job: WorkerJobRead
    # The entry this action opened or closed (start returns the same entry when repeated).
    entry: TimeEntryRead | None = None


class JobFinish(Input):
    reason: Reason | None = None


# --- holds (a series paused for a while) -------------------------------------------------------


class SeriesHoldCreate(Input):
    """Pause the series from `starts_on` through `ends_on` (local dates, inclusive)."""

    starts_on: Day
    ends_on: Day
    reason: Reason | None = None


class SeriesHoldRead(Output):
    id: UUID
    series_id: UUID
    starts_on: date
    ends_on: date
    reason: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, hold: SeriesHold) -> SeriesHoldRead:
        return cls(
            id=hold.id,
            series_id=hold.series_id,
            starts_on=hold.starts_on,
            ends_on=hold.ends_on,
            reason=hold.reason,
            created_at=hold.created_at,
        )


class SeriesHoldResult(Output):
    """A hold as placed: the visits it cancelled."""

    hold: SeriesHoldRead
    cancelled_booking_ids: list[UUID]


class SeriesHoldLifted(Output):
    """A hold lifted early: what is left of it (None when it had not started) and the visits booked
    again from today (or the hold's start) through its old end; dates that cannot be booked are in
    `conflicts`."""

    hold: SeriesHoldRead | None
    booking_ids: list[UUID]
    conflicts: list[SeriesConflictRead]
