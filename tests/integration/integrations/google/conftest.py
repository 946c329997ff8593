"""Google Calendar tests: the fake Calendar server, connections made as the core stores them, and
the jobs run as a worker would (their outbox rows, twice where a redelivery matters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.runtime import JobRuntime
from tests.fakes.google_calendar import FakeGoogleCalendar, fake_gcal  # noqa: F401 (fixture)
from tests.support.messaging import job_runtime

registry.import_jobs()

PUSH = "integrations.gcal_push_visit"
REPUSH = "integrations.gcal_repush"
SYNC_NOW = "integrations.gcal_sync_calendar"
WEBHOOK_URL = "https://api.example.com/v1/integrations/google/notifications"


async def connect_google(owner_engine: AsyncEngine, org_id: UUID, owner_user_id: UUID | None, token: str) -> UUID:
    """An active Google connection whose access token is `token` (the fake's calendar of that name),
    sealed as the core stores it."""
    from tests.conftest import make_settings
    from tests.support.integrations import connect

    return await connect(
        owner_engine, make_settings(), org_id, "google", owner_user_id=owner_user_id, access_token=token
    )


@asynccontextmanager
async def gcal_runtime(fake: FakeGoogleCalendar, **env: str) -> AsyncIterator[JobRuntime]:
    async with job_runtime(GOOGLE_API_BASE_URL=fake.base_url, GCAL_SYNC_INTERVAL_SECONDS="60", **env) as rt:
        yield rt


_RAN: set[Any] = set()


async def run_jobs(owner_engine: AsyncEngine, name: str, *, twice: bool = False) -> int:
    """Run every outbox row addressed to `name` not run yet here (twice: a redelivery)."""
    async with owner_engine.connect() as conn:
        rows = list(
            await conn.execute(
                text("SELECT id, args, kwargs FROM job_outbox WHERE actor_name = :n ORDER BY id"), {"n": name}
            )
        )
    rows = [r for r in rows if r.id not in _RAN]
    for row in rows:
        _RAN.add(row.id)
        for _ in range(2 if twice else 1):
            await JOBS[name].fn(*row.args, **(row.kwargs or {}))
    return len(rows)


async def sql(owner_engine: AsyncEngine, statement: str, **params: Any) -> list[Any]:
    async with owner_engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []
