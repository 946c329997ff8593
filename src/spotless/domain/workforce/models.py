"""Cleaners (workers), their weekly hours, their time off, and the teams they go out in."""

from __future__ import annotations

from datetime import datetime, time
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key


class Worker(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "worker"
    __table_args__ = (
        tenant_key("worker"),
        # One profile per login per organisation; profiles without a login are allowed.
        UniqueConstraint("org_id", "user_id", name="uq_worker_org_id_user_id"),
        CheckConstraint("hourly_rate_cents IS NULL OR hourly_rate_cents >= 0", name="hourly_rate_not_negative"),
        Index("ix_worker_org_id_name", "org_id", "name"),
    )

    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    email: Mapped[str | None] = mapped_column(CITEXT(), default=None)
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    hourly_rate_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class WorkingHours(UUIDv7AuditBase, TenantMixin):
    """One interval of a weekly template, in the organisation's local wall-clock time (DST-proof)."""

    __tablename__ = "working_hours"
    __table_args__ = (
        tenant_fk("worker_id", "worker", ondelete="CASCADE"),
        UniqueConstraint("org_id", "worker_id", "weekday", "start_time", name="uq_working_hours_slot"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("end_time > start_time", name="end_after_start"),
    )

    worker_id: Mapped[UUID] = mapped_column(index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday .. 6 = Sunday
    start_time: Mapped[time] = mapped_column(Time())
    end_time: Mapped[time] = mapped_column(Time())


class TimeOff(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "time_off"
    __table_args__ = (
        tenant_fk("worker_id", "worker", ondelete="CASCADE"),
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        Index("ix_time_off_worker_id_starts_at", "worker_id", "starts_at"),
    )

    worker_id: Mapped[UUID] = mapped_column()
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text, default=None)


class ExternalBusy(UUIDv7AuditBase, TenantMixin):
    """Time a worker is busy elsewhere, as an outside calendar says (their own Google Calendar):
    only the times, never what. It blocks availability and assignment exactly as time off does
    (`schedules` reads both in one statement). `source_id` is the synced calendar it came from,
    `external_id` the provider's event id: a resync replaces rows by that key."""

    __tablename__ = "external_busy"
    __table_args__ = (
        tenant_key("external_busy"),
        tenant_fk("worker_id", "worker", ondelete="CASCADE"),
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        UniqueConstraint("org_id", "source_id", "external_id", name="uq_external_busy_source_event"),
        Index("ix_external_busy_worker_id_starts_at", "worker_id", "starts_at"),
    )

    worker_id: Mapped[UUID] = mapped_column()
    source_id: Mapped[UUID] = mapped_column()
    external_id: Mapped[str] = mapped_column(String(1024))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Team(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "team"
    __table_args__ = (tenant_key("team"), UniqueConstraint("org_id", "name", name="uq_team_org_id_name"))

    name: Mapped[str] = mapped_column(String(100))


class TeamMember(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "team_member"
    __table_args__ = (
        tenant_fk("team_id", "team", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="CASCADE"),
        UniqueConstraint("org_id", "team_id", "worker_id", name="uq_team_member_team_worker"),
    )

    team_id: Mapped[UUID] = mapped_column(index=True)
    worker_id: Mapped[UUID] = mapped_column(index=True)
