"""/v1/workers (profiles, weekly hours, time off) and /v1/teams. Deactivating a worker is DELETE
(204, soft: their bookings keep them); PATCH {"active": true} brings them back."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.models import Organization
from spotless.domain.identity.principal import Principal
from spotless.domain.workforce import services
from spotless.domain.workforce.hours import format_clock
from spotless.domain.workforce.models import TimeOff, WorkingHours
from spotless.domain.workforce.schemas import (
    HoursItem,
    TeamCreate,
    TeamMemberAdd,
    TeamRead,
    TeamUpdate,
    TimeOffCreate,
    TimeOffRead,
    WeeklyHoursIn,
    WeeklyHoursRead,
    WorkerCreate,
    WorkerRead,
    WorkerUpdate,
)
from spotless.domain.workforce.services import WorkerVisibility
from spotless.lib.bounds import Instant
from spotless.lib.errors import FieldError, not_found
from spotless.lib.pagination import Offset  # capped: a deep offset is a 400, not a scan

VIEW = {"permission": "core.view"}
MANAGE = {"permission": "users.manage"}
Limit = Annotated[int, Parameter(ge=1, le=200, description="page size (max 200)")]


async def _org(session: AsyncSession, org_id: UUID) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:  # the caller's own organisation: only gone if deleted mid-request
        raise not_found("organisation")
    return org


def visibility(principal: Principal) -> WorkerVisibility:
    return WorkerVisibility(
        user_id=principal.user_id,
        contact=principal.can("workers.contact.view"),
        pay=principal.can("workers.pay.view"),
    )


def worker_read(row: Row[Any], currency: str) -> WorkerRead:
    """From a row of `services.read_worker`/`list_workers`: groups the query did not select are
    left out of the answer."""
    return WorkerRead(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        phone=row.phone if row.contact_shown else msgspec.UNSET,
        email=row.email if row.contact_shown else msgspec.UNSET,
        skills=list(row.skills),
        hourly_rate_cents=row.hourly_rate_cents if row.pay_shown else msgspec.UNSET,
        currency=currency,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def hours_read(worker_id: UUID, timezone: str, rows: list[WorkingHours]) -> WeeklyHoursRead:
    return WeeklyHoursRead(
        worker_id=worker_id,
        timezone=timezone,
        hours=[
            HoursItem(weekday=r.weekday, start=format_clock(r.start_time), end=format_clock(r.end_time)) for r in rows
        ],
    )


def time_off_read(entry: TimeOff | Row[Any], reason_shown: bool = True) -> TimeOffRead:
    return TimeOffRead(
        id=entry.id,
        worker_id=entry.worker_id,
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        reason=entry.reason if reason_shown else msgspec.UNSET,
        created_at=entry.created_at,
    )


class WorkerController(Controller):
    path = "/v1/workers"
    tags = ["workers"]

    @post(
        operation_id="createWorker", summary="Create a worker profile (optionally linked to a worker login)", opt=MANAGE
    )
    async def create_worker(self, db_session: AsyncSession, principal: Principal, data: WorkerCreate) -> WorkerRead:
        worker = await services.create_worker(db_session, principal.org_id, data)
        row = await services.read_worker(db_session, visibility(principal), worker.id)
        return worker_read(row, (await _org(db_session, principal.org_id)).currency)

    @get(
        operation_id="listWorkers",
        summary="List workers (phone, email and rate only where the caller may see them)",
        opt=VIEW,
    )
    async def list_workers(
        self,
        db_session: AsyncSession,
        principal: Principal,
        q: Annotated[
            str | None,
            Parameter(
                max_length=200,
                pattern=r"^[^\x00]*$",
                description="matches the name; also email and phone for holders of workers.contact.view",
            ),
        ] = None,
        skill: Annotated[str | None, Parameter(max_length=50, pattern=r"^[^\x00]*$")] = None,
        include_inactive: bool = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[WorkerRead]:
        rows, total = await services.list_worker_views(
            db_session,
            visibility(principal),
            limit=limit,
            offset=offset,
            active=None if include_inactive else True,
            q=q,
            skill=skill,
        )
        currency = (await _org(db_session, principal.org_id)).currency
        return OffsetPagination(items=[worker_read(w, currency) for w in rows], total=total, limit=limit, offset=offset)

    @get("/{worker_id:uuid}", operation_id="getWorker", summary="One worker", opt=VIEW)
    async def get_worker(self, db_session: AsyncSession, principal: Principal, worker_id: UUID) -> WorkerRead:
        row = await services.read_worker(db_session, visibility(principal), worker_id)
        return worker_read(row, (await _org(db_session, principal.org_id)).currency)

    @patch(
        "/{worker_id:uuid}",
        operation_id="updateWorker",
        summary="Update a worker (PATCH active to reactivate)",
        opt=MANAGE,
    )
    async def update_worker(
        self, db_session: AsyncSession, principal: Principal, worker_id: UUID, data: WorkerUpdate
    ) -> WorkerRead:
        await services.update_worker(db_session, principal.org_id, worker_id, data)
        row = await services.read_worker(db_session, visibility(principal), worker_id)
        return worker_read(row, (await _org(db_session, principal.org_id)).currency)

    @delete(
        "/{worker_id:uuid}",
        operation_id="deactivateWorker",
        summary="Deactivate a worker (soft, idempotent)",
        opt=MANAGE,
    )
    async def deactivate_worker(self, db_session: AsyncSession, worker_id: UUID) -> None:
        await services.deactivate_worker(db_session, worker_id)

    # --- weekly hours ---

    @get(
        "/{worker_id:uuid}/hours",
        operation_id="getWorkerHours",
        summary="Weekly working hours, in the organisation's local time",
        opt=VIEW,
    )
    async def get_hours(self, db_session: AsyncSession, principal: Principal, worker_id: UUID) -> WeeklyHoursRead:
        rows = await services.get_weekly_hours(db_session, worker_id)
        return hours_read(worker_id, (await _org(db_session, principal.org_id)).timezone, rows)

    @put(
        "/{worker_id:uuid}/hours",
        operation_id="replaceWorkerHours",
        summary="Replace the weekly working hours (HH:MM, organisation local time; [] clears)",
        opt=MANAGE,
    )
    async def replace_hours(
        self, db_session: AsyncSession, principal: Principal, worker_id: UUID, data: WeeklyHoursIn
    ) -> WeeklyHoursRead:
        rows = await services.replace_weekly_hours(
            db_session, principal.org_id, worker_id, [(h.weekday, h.start, h.end) for h in data.hours]
        )
        return hours_read(worker_id, (await _org(db_session, principal.org_id)).timezone, rows)

    # --- time off ---

    @get(
        "/{worker_id:uuid}/time-off",
        operation_id="listWorkerTimeOff",
        summary="Time off, optionally only what overlaps [from, to) (reasons only where the caller may see them)",
        opt=VIEW,
    )
    async def list_time_off(
        self,
        db_session: AsyncSession,
        principal: Principal,
        worker_id: UUID,
        from_: Annotated[Instant | None, Parameter(query="from", description="ISO 8601 with offset")] = None,
        to: Annotated[Instant | None, Parameter(description="ISO 8601 with offset")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[TimeOffRead]:
        for name, value in (("from", from_), ("to", to)):
            if value is not None and value.tzinfo is None:
                raise FieldError(name, "timestamps need a UTC offset")
        rows, total, reasons = await services.list_time_off(
            db_session, visibility(principal), worker_id, start=from_, end=to, limit=limit, offset=offset
        )
        return OffsetPagination(
            items=[time_off_read(t, reasons) for t in rows], total=total, limit=limit, offset=offset
        )

    @post("/{worker_id:uuid}/time-off", operation_id="createWorkerTimeOff", summary="Record time off", opt=MANAGE)
    async def create_time_off(
        self, db_session: AsyncSession, principal: Principal, worker_id: UUID, data: TimeOffCreate
    ) -> TimeOffRead:
        return time_off_read(await services.create_time_off(db_session, principal.org_id, worker_id, data))

    @delete(
        "/{worker_id:uuid}/time-off/{time_off_id:uuid}",
        operation_id="deleteWorkerTimeOff",
        summary="Delete time off",
        opt=MANAGE,
    )
    async def delete_time_off(self, db_session: AsyncSession, worker_id: UUID, time_off_id: UUID) -> None:
        await services.delete_time_off(db_session, worker_id, time_off_id)


class TeamController(Controller):
    path = "/v1/teams"
    tags = ["workers"]

    @post(operation_id="createTeam", summary="Create a team", opt=MANAGE)
    async def create_team(self, db_session: AsyncSession, principal: Principal, data: TeamCreate) -> TeamRead:
        team, worker_ids = await services.create_team(db_session, principal.org_id, data)
        return TeamRead(
            id=team.id, name=team.name, worker_ids=worker_ids, created_at=team.created_at, updated_at=team.updated_at
        )

    @get(operation_id="listTeams", summary="List teams with their members", opt=VIEW)
    async def list_teams(
        self, db_session: AsyncSession, limit: Limit = 50, offset: Offset = 0
    ) -> OffsetPagination[TeamRead]:
        rows, total = await services.list_teams(db_session, limit=limit, offset=offset)
        members = await services.member_ids(db_session, [t.id for t in rows])
        items = [
            TeamRead(id=t.id, name=t.name, worker_ids=members[t.id], created_at=t.created_at, updated_at=t.updated_at)
            for t in rows
        ]
        return OffsetPagination(items=items, total=total, limit=limit, offset=offset)

    async def _read(self, db_session: AsyncSession, team_id: UUID) -> TeamRead:
        team = await services.get_team(db_session, team_id)
        members = await services.member_ids(db_session, [team.id])
        return TeamRead(
            id=team.id,
            name=team.name,
            worker_ids=members[team.id],
            created_at=team.created_at,
            updated_at=team.updated_at,
        )

    @get("/{team_id:uuid}", operation_id="getTeam", summary="One team", opt=VIEW)
    async def get_team(self, db_session: AsyncSession, team_id: UUID) -> TeamRead:
        return await self._read(db_session, team_id)

    @patch("/{team_id:uuid}", operation_id="updateTeam", summary="Rename a team or replace its members", opt=MANAGE)
    async def update_team(
        self, db_session: AsyncSession, principal: Principal, team_id: UUID, data: TeamUpdate
    ) -> TeamRead:
        await services.update_team(db_session, principal.org_id, team_id, data)
        return await self._read(db_session, team_id)

    @delete("/{team_id:uuid}", operation_id="deleteTeam", summary="Delete a team (its workers stay)", opt=MANAGE)
    async def delete_team(self, db_session: AsyncSession, team_id: UUID) -> None:
        await services.delete_team(db_session, team_id)

    @post(
        "/{team_id:uuid}/members",
        operation_id="addTeamMember",
        summary="Add a worker to a team (idempotent)",
        opt=MANAGE,
    )
    async def add_member(
        self, db_session: AsyncSession, principal: Principal, team_id: UUID, data: TeamMemberAdd
    ) -> TeamRead:
        await services.add_team_member(db_session, principal.org_id, team_id, data.worker_id)
        return await self._read(db_session, team_id)

    @delete(
        "/{team_id:uuid}/members/{worker_id:uuid}",
        operation_id="removeTeamMember",
        summary="Remove a worker from a team",
        opt=MANAGE,
    )
    async def remove_member(self, db_session: AsyncSession, team_id: UUID, worker_id: UUID) -> None:
        await services.remove_team_member(db_session, team_id, worker_id)
