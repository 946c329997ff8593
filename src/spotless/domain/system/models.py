from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import orm_registry
from sqlalchemy import DateTime, String, Text
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
    """One row per (periodic job, slot): makes periodic jobs idempotent however often they arrive."""

    __tablename__ = "scheduled_runs"

    job_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
