"""Bookings, who does them, recurring series, and time tracked in the field.

The one invariant that matters most lives in Postgres: `ex_booking_assignment_no_overlap` refuses
a second active assignment of the same worker whose range overlaps, whatever the number of API
nodes or the timing of requests. Each assignment's `during` is [starts_at, ends_at + buffer): the
cleaner is busy for the job and then for the organisation's travel buffer; two such ranges are
disjoint exactly when the gap between the jobs is at least the buffer.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, ExcludeConstraint, Range
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.ext.orderinglist import ordering_list
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key
from spotless.domain.scheduling.states import STATUSES

_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)


class SchedulingSettings(UUIDv7AuditBase, TenantMixin):
    """Per-organisation scheduling knobs. Kept here rather than on `organization` so scheduling
    owns its rules (and its migration) without reaching into identity's table."""

    __tablename__ = "scheduling_settings"
    __table_args__ = (
        UniqueConstraint("org_id", name="uq_scheduling_settings_org_id"),
        CheckConstraint("travel_buffer_minutes BETWEEN 0 AND 240", name="travel_buffer_range"),
        CheckConstraint("slot_step_minutes BETWEEN 5 AND 240", name="slot_step_range"),
    )

    travel_buffer_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))


class BookingSeries(UUIDv7AuditBase, TenantMixin):
    """A recurrence rule in local wall-clock time; its occurrences are bookings with `series_id`."""

    __tablename__ = "booking_series"
    __table_args__ = (
        tenant_key("booking_series"),
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        tenant_fk("address_id", "client_address", ondelete="CASCADE"),
        tenant_fk("service_id", "service", ondelete="RESTRICT"),
        tenant_fk("team_id", "team", ondelete="SET NULL"),
        tenant_fk("parent_series_id", "booking_series", ondelete="SET NULL"),
        CheckConstraint("frequency IN ('weekly', 'monthly')", name="frequency_known"),
        CheckConstraint("interval BETWEEN 1 AND 52", name="interval_range"),
        CheckConstraint("day_of_month IS NULL OR day_of_month BETWEEN 1 AND 31", name="day_of_month_range"),
        CheckConstraint("until_date IS NULL OR until_date >= anchor_date", name="until_after_anchor"),
        CheckConstraint("status IN ('active', 'ended', 'cancelled')", name="status_known"),
        # The materialiser's scan: active series not yet expanded to the horizon.
        Index("ix_booking_series_due", "materialised_until", postgresql_where=text("status = 'active'")),
    )

    client_id: Mapped[UUID] = mapped_column(index=True)
    address_id: Mapped[UUID] = mapped_column()
    service_id: Mapped[UUID] = mapped_column()
    team_id: Mapped[UUID | None] = mapped_column(default=None)
    # The cleaners, in order: rows of booking_series_worker (a table, so the database checks each
    # belongs to this organisation), read and written as a list of ids. Set when the series is
    # made (edits split it into a new series); replacing it in place would insert the new rows
    # before deleting the old ones, which the unique (series_id, worker_id) refuses for a kept id.
    cleaners: Mapped[list[BookingSeriesWorker]] = relationship(
        order_by="BookingSeriesWorker.position",
        collection_class=ordering_list("position"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    worker_ids: AssociationProxy[list[UUID]] = association_proxy(
        "cleaners", "worker_id", creator=lambda worker_id: BookingSeriesWorker(worker_id=worker_id)
    )
    frequency: Mapped[str] = mapped_column(String(16))
    interval: Mapped[int] = mapped_column(SmallInteger, default=1)
    day_of_month: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    start_time: Mapped[time] = mapped_column(Time())
    # The zone the rule was written in: occurrences stay at `start_time` there across DST.
    timezone: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    anchor_date: Mapped[date] = mapped_column(Date)
    until_date: Mapped[date | None] = mapped_column(Date, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    addon_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Occurrences up to this local date exist as bookings or conflicts.
    materialised_until: Mapped[date | None] = mapped_column(Date, default=None)
    # Why the materialiser last failed on this series (service deactivated, pricing ...), and
    # when: it is retried after a back-off and cleared by the next success.
    materialise_error: Mapped[str | None] = mapped_column(Text, default=None)
    materialise_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    parent_series_id: Mapped[UUID | None] = mapped_column(default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)


class SeriesHold(UUIDv7AuditBase, TenantMixin):
    """A pause of a series (the client's vacation): no visit is booked from `starts_on` through
    `ends_on` (local dates, inclusive). Holds of one series never overlap (the database refuses)."""

    __tablename__ = "series_hold"
    __table_args__ = (
        tenant_fk("series_id", "booking_series", ondelete="CASCADE"),
        CheckConstraint("ends_on >= starts_on", name="ends_after_starts"),
        ExcludeConstraint(
            ("org_id", "="),
            ("series_id", "="),
            (text("daterange(starts_on, ends_on, '[]')"), "&&"),
            name="ex_series_hold_overlap",
            using="gist",
        ),
    )

    series_id: Mapped[UUID] = mapped_column(index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)


class BookingSeriesWorker(UUIDv7AuditBase, TenantMixin):
    """One cleaner of a series. `org_id` is filled from the series by the relationship."""

    __tablename__ = "booking_series_worker"
    __table_args__ = (
        tenant_fk("series_id", "booking_series", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="RESTRICT"),
        UniqueConstraint("series_id", "worker_id", name="uq_booking_series_worker_series_id_worker_id"),
    )

    series_id: Mapped[UUID] = mapped_column()
    worker_id: Mapped[UUID] = mapped_column(index=True)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)


@event.listens_for(BookingSeries, "init")
def _series_starts_with_no_cleaners(target: BookingSeries, args: Any, kwargs: Any) -> None:
    # A new series' collection exists even when empty, so reading it never lazy-loads (async).
    target.cleaners = []


class Booking(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "booking"
    __table_args__ = (
        tenant_key("booking"),
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        tenant_fk("address_id", "client_address", ondelete="CASCADE"),
        tenant_fk("service_id", "service", ondelete="RESTRICT"),
        tenant_fk("team_id", "team", ondelete="SET NULL"),
        tenant_fk("series_id", "booking_series", ondelete="SET NULL"),
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status_known"),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("(series_id IS NULL) = (occurrence_date IS NULL)", name="occurrence_with_series"),
        # One live booking per occurrence of a series: re-running the materialiser changes nothing.
        # A cancelled one does not hold the date, so lifting a hold can book it again.
        Index(
            "uq_booking_series_occurrence",
            "series_id",
            "occurrence_date",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
        ),
        Index("ix_booking_org_id_starts_at_id", "org_id", "starts_at", "id"),  # keyset order of the list
        Index("ix_booking_org_id_client_id_starts_at", "org_id", "client_id", "starts_at"),
    )

    client_id: Mapped[UUID] = mapped_column()
    address_id: Mapped[UUID] = mapped_column()
    service_id: Mapped[UUID] = mapped_column()
    team_id: Mapped[UUID | None] = mapped_column(default=None)
    series_id: Mapped[UUID | None] = mapped_column(default=None)
    occurrence_date: Mapped[date | None] = mapped_column(Date, default=None)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    cancel_reason: Mapped[str | None] = mapped_column(Text, default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # When an assigned cleaner said they were on their way (field app, once per booking).
    travel_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Snapshot of the quote at booking time: later price changes never touch an existing booking.
    frequency: Mapped[str] = mapped_column(String(16), default="once")
    price: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    estimated_minutes: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    addon_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    override_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    # The client owes money (payment_holds): the visit keeps its slot but no cleaner is sent. Set
    # by the database on insert while the client has a hold (trigger `booking_payment_hold`),
    # hence no Python default: the INSERT's RETURNING brings the value back.
    payment_hold: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class ClientPaymentHold(UUIDv7AuditBase, TenantMixin):
    """One reason a client's visits are on payment hold: an unpaid invoice of theirs (billing's
    id, no reference across contexts). The visits are released when the last row goes."""

    __tablename__ = "client_payment_holds"
    __table_args__ = (
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        UniqueConstraint(
            "org_id", "client_id", "invoice_id", name="uq_client_payment_holds_org_id_client_id_invoice_id"
        ),
    )

    client_id: Mapped[UUID] = mapped_column()
    invoice_id: Mapped[UUID] = mapped_column(GUID())
    reason: Mapped[str | None] = mapped_column(Text, default=None)


class BookingAssignment(UUIDv7AuditBase, TenantMixin):
    """A worker on a booking. `starts_at`/`ends_at` mirror the booking (kept in sync in the same
    transaction) so a worker's day is one index range scan."""

    __tablename__ = "booking_assignment"
    __table_args__ = (
        tenant_key("booking_assignment"),
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="RESTRICT"),
        UniqueConstraint("booking_id", "worker_id", name="uq_booking_assignment_booking_id_worker_id"),
        Index("ix_booking_assignment_org_id_worker_id_starts_at", "org_id", "worker_id", "starts_at"),
        ExcludeConstraint(
            ("org_id", "="),
            ("worker_id", "="),
            ("during", "&&"),
            name="ex_booking_assignment_no_overlap",
            using="gist",
            where=text("active"),
        ),
    )

    booking_id: Mapped[UUID] = mapped_column(index=True)
    worker_id: Mapped[UUID] = mapped_column()
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE())
    # False once the booking no longer holds the worker's time (see states.HOLDS_TIME).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    overrun_reason: Mapped[str | None] = mapped_column(Text, default=None)


class TimeEntry(UUIDv7AuditBase, TenantMixin):
    """One stretch of work by one worker on one booking; a pause closes it, a resume opens another."""

    __tablename__ = "time_entry"
    __table_args__ = (
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("assignment_id", "booking_assignment", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="RESTRICT"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_starts"),
        # At most one running stretch per worker and booking: concurrent starts cannot both open one.
        Index("uq_time_entry_open", "assignment_id", unique=True, postgresql_where=text("ended_at IS NULL")),
    )

    booking_id: Mapped[UUID] = mapped_column(index=True)
    assignment_id: Mapped[UUID] = mapped_column()
    worker_id: Mapped[UUID] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class SeriesConflict(UUIDv7AuditBase, TenantMixin):
    """An occurrence the materialiser could not book (double booking, hours, time off): reported,
    never silently dropped. Listed at /v1/series/{id}/conflicts until someone resolves it."""

    __tablename__ = "series_conflict"
    __table_args__ = (
        tenant_fk("series_id", "booking_series", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="SET NULL"),
        tenant_fk("conflicting_booking_id", "booking", ondelete="SET NULL"),
        UniqueConstraint("series_id", "occurrence_date", name="uq_series_conflict_series_id_occurrence_date"),
        CheckConstraint(
            "reason IN ('booking-conflict', 'outside-working-hours', 'worker-time-off', 'worker-calendar-busy',"
            " 'worker-inactive')",
            name="reason_known",
        ),
    )

    series_id: Mapped[UUID] = mapped_column()
    occurrence_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(32))
    worker_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    conflicting_booking_id: Mapped[UUID | None] = mapped_column(default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
