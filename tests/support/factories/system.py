"""The platform's own rows: the scheduler's heartbeat and periodic runs (no organisation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.system.models import JobHeartbeat, ScheduledRun
from tests.support.factories.db import add


async def new_heartbeat(db: AsyncSession, **overrides: Any) -> JobHeartbeat:
    """The jobs runner's beat, fresh unless told (`last_beat_at`)."""
    fields: dict[str, Any] = {"name": "jobs-runner", "last_beat_at": datetime.now(UTC), "runner_id": "test-runner"}
    return await add(db, JobHeartbeat(**{**fields, **overrides}))


async def new_scheduled_run(db: AsyncSession, job_name: str, slot: datetime, **overrides: Any) -> ScheduledRun:
    """A done run of (job, slot); a `status="started"` one holds a lease of an hour unless told."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {"started_at": now, "status": "done", "attempts": 1}
    if overrides.get("status") == "started":
        fields["lease_until"] = now + timedelta(hours=1)
    return await add(db, ScheduledRun(job_name=job_name, slot=slot, **{**fields, **overrides}))
