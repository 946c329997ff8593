"""/v1/workers (profiles, weekly hours, time off) and /v1/teams. Deactivating a worker is DELETE
(204, soft: their bookings keep them); PATCH {"active": true} brings them back."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import OrgProfile, Principal
from spotless.domain.workforce import services
from spotless.domain.workforce.schemas import (
    TeamCreate,
    TeamMemberAdd,
    TeamRead,
    TeamUpdate,
    TimeOffCreate,
    TimeOffRead,
    WeeklyHoursRead,
    WeeklyHoursUpdate,
    WorkerCreate,
    WorkerRead,
    WorkerUpdate,
)
from spotless.domain.workforce.services import WorkerVisibility
from spotless.lib.errors import FieldError
from spotless.lib.schema import NO_NUL, Instant, Limit, Offset  # offset capped: a deep offset is a 400

VIEW = {"permission": "core.view"}
MANAGE = {"permission": "users.manage"}


def visibility(principal: Principal) -> WorkerVisibility:
    return WorkerVisibility(
        user_id=principal.user_id,
        contact=principal.can("workers.contact.view"),
        pay=principal.can("workers.pay.view"),
    )


class WorkerController(Controller):
    path = "/v1/workers"
    tags = ["workers"]

    @post(
        operation_id="createWorker", summary="Create a worker profile (optionally linked to a worker login)", opt=MANAGE
    )
    async def create_worker(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, data: WorkerCreate
    ) -> WorkerRead:
        worker = await services.create_worker(db_session, org.id, data)
        return await services.read_worker(db_session, visibility(principal), worker.id, org.currency)

    @get(
        operation_id="listWorkers",
        summary="List workers (phone, email and rate only where the caller may see them)",
        opt=VIEW,
    )
    async def list_workers(
        self,
        db_session: AsyncSession,
        principal: Principal,
        org: OrgProfile,
        q: Annotated[
            str | None,
            Parameter(
                max_length=200,
                pattern=NO_NUL,
                description="matches the name; also email and phone for holders of workers.contact.view",
            ),
        ] = None,
        skill: Annotated[str | None, Parameter(max_length=50, pattern=NO_NUL)] = None,
        include_inactive: bool = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[WorkerRead]:
        return await services.list_worker_views(
            db_session,
            visibility(principal),
            org.currency,
            limit=limit,
            offset=offset,
            active=None if include_inactive else True,
            q=q,
            skill=skill,
        )

    @get("/{worker_id:uuid}", operation_id="getWorker", summary="One worker", opt=VIEW)
    async def get_worker(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, worker_id: UUID
    ) -> WorkerRead:
        return await services.read_worker(db_session, visibility(principal), worker_id, org.currency)

    @patch(
        "/{worker_id:uuid}",
        operation_id="updateWorker",
        summary="Update a worker (PATCH active to reactivate)",
        opt=MANAGE,
    )
    async def update_worker(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, worker_id: UUID, data: WorkerUpdate
    ) -> WorkerRead:
        await services.update_worker(db_session, org.id, worker_id, data)
        return await services.read_worker(db_session, visibility(principal), worker_id, org.currency)

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
    async def get_hours(self, db_session: AsyncSession, org: OrgProfile, worker_id: UUID) -> WeeklyHoursRead:
        rows = await services.get_weekly_hours(db_session, worker_id)
        return WeeklyHoursRead.from_model(worker_id, org.timezone, rows)

    @put(
        "/{worker_id:uuid}/hours",
        operation_id="replaceWorkerHours",
        summary="Replace the weekly working hours (HH:MM, organisation local time; [] clears)",
        opt=MANAGE,
    )
    async def replace_hours(
        self, db_session: AsyncSession, org: OrgProfile, worker_id: UUID, data: WeeklyHoursUpdate
    ) -> WeeklyHoursRead:
        rows = await services.replace_weekly_hours(
            db_session, org.id, worker_id, [(h.weekday, h.start, h.end) for h in data.hours]
        )
        return WeeklyHoursRead.from_model(worker_id, org.timezone, rows)

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
        return await services.list_time_off(
            db_session, visibility(principal), worker_id, start=from_, end=to, limit=limit, offset=offset
        )

    @post("/{worker_id:uuid}/time-off", operation_id="createWorkerTimeOff", summary="Record time off", opt=MANAGE)
    async def create_time_off(
        self, db_session: AsyncSession, principal: Principal, worker_id: UUID, data: TimeOffCreate
    ) -> TimeOffRead:
        return TimeOffRead.from_model(await services.create_time_off(db_session, principal.org_id, worker_id, data))

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
        return TeamRead.from_model(team, worker_ids)

    @get(operation_id="listTeams", summary="List teams with their members", opt=VIEW)
    async def list_teams(
        self, db_session: AsyncSession, limit: Limit = 50, offset: Offset = 0
    ) -> OffsetPagination[TeamRead]:
        return await services.list_teams(db_session, limit=limit, offset=offset)

    @get("/{team_id:uuid}", operation_id="getTeam", summary="One team", opt=VIEW)
    async def get_team(self, db_session: AsyncSession, team_id: UUID) -> TeamRead:
        return await services.read_team(db_session, team_id)

    @patch("/{team_id:uuid}", operation_id="updateTeam", summary="Rename a team or replace its members", opt=MANAGE)
    async def update_team(
        self, db_session: AsyncSession, principal: Principal, team_id: UUID, data: TeamUpdate
    ) -> TeamRead:
        await services.update_team(db_session, principal.org_id, team_id, data)
        return await services.read_team(db_session, team_id)

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
        return await services.read_team(db_session, team_id)

    @delete(
        "/{team_id:uuid}/members/{worker_id:uuid}",
        operation_id="removeTeamMember",
        summary="Remove a worker from a team",
        opt=MANAGE,
    )
    async def remove_member(self, db_session: AsyncSession, team_id: UUID, worker_id: UUID) -> None:
        await services.remove_team_member(db_session, team_id, worker_id)
