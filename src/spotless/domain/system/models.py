from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import orm_registry
from sqlalchemy import CheckConstraint, DateTime, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column


@orm_registry.mapped
class JobHeartbeat:
    """The scheduler's tick writes here as well as to Redis, so readiness survives a Redis outage."""

    __tablename__ = "job_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    runner_id: Mapped[str] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


@orm_registry.mapped
class ScheduledRun:
    """One row per (periodic job, slot): a done slot is never run again however often it arrives;
    a failed one, or one whose runner died past its lease, is taken over by the next delivery."""

    __tablename__ = "scheduled_runs"
    __table_args__ = (
        CheckConstraint("status IN ('started', 'done', 'failed')", name="status_known"),
        CheckConstraint("status <> 'started' OR lease_until IS NOT NULL", name="started_has_lease"),
    )

    job_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="done")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # A started run is the runner's until then; after it, a redelivery may take the slot over.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Fences the end of a run: only the attempt that holds the claim marks it done or failed.
    claim_token: Mapped[UUID | None] = mapped_column(Uuid, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
