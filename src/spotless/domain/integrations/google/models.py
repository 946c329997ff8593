"""Google Calendar's state on our side: one sync row per connected calendar (the cursor that
survives restarts, and its watch channel), the events we pushed (so a change pushes once), and the
visits a newly synced busy block overlaps (conflicts for dispatch).

Busy blocks themselves are workforce's `ExternalBusy` rows (`source_id` = our calendar row's id):
availability and assignment read them with time off."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key


class GcalCalendar(UUIDv7AuditBase, TenantMixin):
    """A connected Google calendar: a cleaner's own (`worker_id`: their busy time comes back) or the
    organisation's shared one (`worker_id` NULL: visits are pushed, nothing is pulled)."""

    __tablename__ = "gcal_calendars"
    __table_args__ = (
        tenant_key("gcal_calendars"),
        tenant_fk("connection_id", "integration_connections", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="SET NULL"),
        UniqueConstraint("org_id", "connection_id", name="uq_gcal_calendars_connection"),
        UniqueConstraint("channel_id", name="uq_gcal_calendars_channel_id"),
    )

    connection_id: Mapped[UUID] = mapped_column()
    worker_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    calendar_id: Mapped[str] = mapped_column(String(1024), default="primary")
    # The cursor: NULL means the next pass is a full sync of the window.
    sync_token: Mapped[str | None] = mapped_column(Text, default=None)
    full_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # After a rate answer: no call before then (the cursor is kept).
    backoff_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # The watch channel; its token is kept only as a SHA-256 (the notification carries it in clear).
    channel_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel_resource_id: Mapped[str | None] = mapped_column(String(255), default=None)
    channel_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    channel_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A replaced channel still to stop (set in the transaction that stored its successor).
    old_channel_id: Mapped[str | None] = mapped_column(String(64), default=None)
    old_channel_resource_id: Mapped[str | None] = mapped_column(String(255), default=None)


class GcalEvent(UUIDv7AuditBase, TenantMixin):
    """A visit pushed to a calendar. `pushed_version` is the digest of what we last wrote: a
    redelivered job finds it equal and calls nothing, so one move patches the event once. `etag` is
    Google's for that write: a different one at sync time means someone edited our event in Google."""

    __tablename__ = "gcal_events"
    __table_args__ = (
        tenant_key("gcal_events"),
        tenant_fk("calendar_id", "gcal_calendars", ondelete="CASCADE"),
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        UniqueConstraint("org_id", "calendar_id", "booking_id", name="uq_gcal_events_calendar_booking"),
        UniqueConstraint("org_id", "calendar_id", "google_event_id", name="uq_gcal_events_calendar_event"),
        Index("ix_gcal_events_booking_id", "booking_id"),
    )

    calendar_id: Mapped[UUID] = mapped_column()
    booking_id: Mapped[UUID] = mapped_column()
    google_event_id: Mapped[str] = mapped_column(String(1024))
    pushed_version: Mapped[str | None] = mapped_column(String(64), default=None)
    etag: Mapped[str | None] = mapped_column(String(255), default=None)
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    pushed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Times an edit made in Google to this event was found and overwritten.
    overwritten: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class GcalConflict(UUIDv7AuditBase, TenantMixin):
    """A visit that a busy block synced from its cleaner's calendar overlaps: reported to dispatch,
    never moved. It disappears with the block (cascade); the list shows only those still overlapping."""

    __tablename__ = "gcal_conflicts"
    __table_args__ = (
        tenant_key("gcal_conflicts"),
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="CASCADE"),
        tenant_fk("busy_id", "external_busy", ondelete="CASCADE"),
        UniqueConstraint("org_id", "booking_id", "busy_id", name="uq_gcal_conflicts_booking_busy"),
        Index("ix_gcal_conflicts_org_id_created_at", "org_id", "created_at"),
    )

    booking_id: Mapped[UUID] = mapped_column()
    worker_id: Mapped[UUID] = mapped_column()
    busy_id: Mapped[UUID] = mapped_column()
    busy_starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    busy_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
