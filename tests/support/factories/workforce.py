"""Cleaners with their weekly hours, time off and teams; and the workforce's cross-organisation
factories."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, time
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.workforce.models import Team, TeamMember, TimeOff, Worker, WorkingHours
from tests.support.factories._http import created_id, expect
from tests.support.factories.db import add
from tests.support.tenancy import REQUEST_BODIES, register

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


async def new_worker(
    db: AsyncSession,
    org_id: UUID,
    *,
    hours: tuple[time, time] | None = (time(8), time(17)),
    weekdays: Iterable[int] = EVERY_DAY,
    **overrides: Any,
) -> Worker:
    """A cleaner working `hours` (local wall-clock) on each of `weekdays`; `hours=None` for none."""
    fields: dict[str, Any] = {"name": "Cleaner", "skills": []}
    worker = await add(db, Worker(org_id=org_id, **{**fields, **overrides}))
    if hours is not None:
        for weekday in weekdays:
            db.add(
                WorkingHours(
                    org_id=org_id, worker_id=worker.id, weekday=weekday, start_time=hours[0], end_time=hours[1]
                )
            )
        await db.flush()
    return worker


async def new_time_off(
    db: AsyncSession, org_id: UUID, worker_id: UUID, starts_at: datetime, ends_at: datetime, **overrides: Any
) -> TimeOff:
    fields: dict[str, Any] = {"reason": "vacation"}
    row = TimeOff(org_id=org_id, worker_id=worker_id, starts_at=starts_at, ends_at=ends_at, **{**fields, **overrides})
    return await add(db, row)


async def new_team(db: AsyncSession, org_id: UUID, worker_ids: Sequence[UUID] = (), **overrides: Any) -> Team:
    team = await add(db, Team(org_id=org_id, **{"name": f"Team {uuid.uuid4().hex[:6]}", **overrides}))
    for worker_id in worker_ids:
        db.add(TeamMember(org_id=org_id, team_id=team.id, worker_id=worker_id))
    await db.flush()
    return team


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------


@register("worker_id")
async def api_worker_id(client: Any, member: Any, ids: dict[str, str] | None = None) -> str:
    """Under /v1/teams/{team_id}/members/{worker_id} the worker is made a member of that team,
    so the owner's own control call finds the membership."""
    response = await client.post("/v1/workers", json={"name": "Victim Worker"}, headers=member.headers)
    worker_id = created_id(response, "worker")
    if ids and "team_id" in ids:
        joined = await client.post(
            f"/v1/teams/{ids['team_id']}/members", json={"worker_id": worker_id}, headers=member.headers
        )
        expect(joined, 201, "team member")
    return worker_id


VICTIM_TIME_OFF = {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}


@register("time_off_id")
async def api_time_off_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    worker_id = ids.get("worker_id") or await api_worker_id(client, member, {})
    response = await client.post(f"/v1/workers/{worker_id}/time-off", json=VICTIM_TIME_OFF, headers=member.headers)
    return created_id(response, "time off")


# team id -> a worker of the same organisation, for bodies that must name one (add member).
_TEAM_WORKER: dict[str, str] = {}


@register("team_id")
async def api_team_id(client: Any, member: Any) -> str:
    worker_id = await api_worker_id(client, member)
    body = {"name": f"Victim Team {uuid.uuid4().hex[:6]}"}
    team_id = created_id(await client.post("/v1/teams", json=body, headers=member.headers), "team")
    _TEAM_WORKER[team_id] = worker_id
    return team_id


REQUEST_BODIES[("POST", "/v1/teams/{team_id:uuid}/members")] = lambda ids: {
    "worker_id": _TEAM_WORKER.get(ids["team_id"], str(uuid.uuid4()))
}
REQUEST_BODIES[("PUT", "/v1/workers/{worker_id:uuid}/hours")] = {
    "hours": [{"weekday": 0, "start": "09:00", "end": "17:00"}]
}
REQUEST_BODIES[("POST", "/v1/workers/{worker_id:uuid}/time-off")] = VICTIM_TIME_OFF
