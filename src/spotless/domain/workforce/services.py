"""Worker, hours, time-off and team rules. Sessions are scoped to one organisation by RLS, so
another organisation's worker is simply not found (404)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.service.pagination import OffsetPagination
from sqlalchemy import ColumnElement, Select, any_, bindparam, case, delete, func, literal, null, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import member_role
from spotless.domain.workforce.hours import validate_weekly_hours
from spotless.domain.workforce.models import Team, TeamMember, TimeOff, Worker, WorkingHours
from spotless.domain.workforce.schedules import active_schedules as active_schedules
from spotless.domain.workforce.schedules import schedules as schedules
from spotless.domain.workforce.schemas import (
    TeamCreate,
    TeamRead,
    TeamUpdate,
    TimeOffCreate,
    TimeOffRead,
    WorkerCreate,
    WorkerRead,
    WorkerUpdate,
)
from spotless.lib.errors import FieldError, Problem, conflict, not_found
from spotless.lib.labels import clean_labels
from spotless.lib.query import flush_or_conflict, get_or_404, offset_page
from spotless.lib.sql import Compiled

# Longer absences are a deactivation, not time off; the cap also keeps availability queries bounded.
MAX_TIME_OFF = timedelta(days=366)
# Pre-checks give the friendly answer; a concurrent writer that slips past them still meets the
# unique key, and `flush_or_conflict` makes that a 409 too, never a 500.
_LOGIN_TAKEN = "This login already belongs to another worker profile."


def _named(stmt: Select[Any]) -> Callable[[tuple[Any, ...]], Any]:
    """`offset_page` hands a several-column row over as a plain tuple: give it its labels back,
    so one mapping reads a page's rows and a single `Row` alike (by attribute)."""
    keys = list(stmt.selected_columns.keys())
    return lambda values: SimpleNamespace(**dict(zip(keys, values, strict=True)))


# --- who may see what of a worker ----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerVisibility:
    """What the caller may read of worker profiles other than their own (their own they see whole).

    `contact` (permission workers.contact.view): phone, email and the reasons of time off.
    `pay` (workers.pay.view): the hourly rate. Hidden values are never selected: the queries below
    put NULL in their place and say which groups were shown, so nothing is filtered afterwards."""

    user_id: UUID
    contact: bool
    pay: bool

    @classmethod
    def everything(cls, user_id: UUID) -> WorkerVisibility:
        return cls(user_id=user_id, contact=True, pay=True)


def _own(vis: WorkerVisibility) -> ColumnElement[bool]:
    # user_id is NULL for profiles without a login: coalesce so "not own" is false, not NULL.
    return func.coalesce(Worker.user_id == vis.user_id, False)


def _shown(allowed: bool, vis: WorkerVisibility) -> ColumnElement[bool]:
    return literal(True) if allowed else _own(vis)


def _guarded(column: Any, allowed: bool, vis: WorkerVisibility, name: str) -> Any:
    if allowed:
        return column.label(name)
    return case((_own(vis), column), else_=null()).label(name)


def _worker_view(vis: WorkerVisibility) -> Select[Any]:
    """Worker columns as `vis` may see them, plus `contact_shown` and `pay_shown`."""
    return select(
        Worker.id,
        Worker.user_id,
        Worker.name,
        _guarded(Worker.phone, vis.contact, vis, "phone"),
        _guarded(Worker.email, vis.contact, vis, "email"),
        Worker.skills,
        _guarded(Worker.hourly_rate_cents, vis.pay, vis, "hourly_rate_cents"),
        Worker.active,
        Worker.created_at,
        Worker.updated_at,
        _shown(vis.contact, vis).label("contact_shown"),
        _shown(vis.pay, vis).label("pay_shown"),
    )


# --- workers -----------------------------------------------------------------------------------


async def _check_worker_login(session: AsyncSession, org_id: UUID, user_id: UUID) -> None:
    """A worker's login must be a member of this organisation with the `worker` role."""
    role = await member_role(session, org_id, user_id)
    if role is None:
        raise FieldError("user_id", "no active member of this organisation has this user id")
    if role != "worker":
        raise FieldError("user_id", f"the member's role is {role!r}; a worker login needs the 'worker' role")


async def create_worker(session: AsyncSession, org_id: UUID, data: WorkerCreate) -> Worker:
    if data.user_id is not None:
        await _check_worker_login(session, org_id, data.user_id)
        await _ensure_login_free(session, data.user_id, None)
    worker = Worker(
        org_id=org_id,
        user_id=data.user_id,
        name=data.name.strip() or data.name,
        phone=data.phone,
        email=data.email,
        skills=clean_labels(data.skills, "skills"),
        hourly_rate_cents=data.hourly_rate_cents,
        active=data.active,
    )
    session.add(worker)
    await flush_or_conflict(session, "worker-login-taken", _LOGIN_TAKEN)
    return worker


async def _ensure_login_free(session: AsyncSession, user_id: UUID, worker_id: UUID | None) -> None:
    stmt = select(Worker.id).where(Worker.user_id == user_id)
    if worker_id is not None:
        stmt = stmt.where(Worker.id != worker_id)
    existing = await session.scalar(stmt)
    if existing is not None:
        raise conflict(
            "worker-login-taken", "This login already belongs to another worker profile.", worker_id=str(existing)
        )


async def list_workers(
    session: AsyncSession, *, limit: int, offset: int, active: bool | None = True
) -> tuple[list[Worker], int]:
    """Whole profiles, for other contexts' internal use (availability); never answered as is."""
    stmt: Select[Any] = select(Worker)
    if active is not None:
        stmt = stmt.where(Worker.active.is_(active))
    page = await offset_page(
        session, stmt, limit=limit, offset=offset, to=lambda worker: worker, order_by=(Worker.name, Worker.id)
    )
    return list(page.items), page.total


async def list_worker_views(
    session: AsyncSession,
    vis: WorkerVisibility,
    currency: str,
    *,
    limit: int,
    offset: int,
    active: bool | None = True,
    q: str | None = None,
    skill: str | None = None,
) -> OffsetPagination[WorkerRead]:
    """Workers as `vis` may see them (see `_worker_view`)."""
    stmt: Select[Any] = _worker_view(vis)
    if active is not None:
        stmt = stmt.where(Worker.active.is_(active))
    if q and q.strip():
        like = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        matches = [Worker.name.ilike(like, escape="\\")]
        if vis.contact:
            # Without the permission a search by phone or email would tell who has that number.
            matches += [Worker.email.ilike(like, escape="\\"), Worker.phone.ilike(like, escape="\\")]
        stmt = stmt.where(or_(*matches))
    if skill:
        stmt = stmt.where(Worker.skills.contains([" ".join(skill.split()).lower()]))
    named = _named(stmt)
    return await offset_page(
        session,
        stmt,
        limit=limit,
        offset=offset,
        to=lambda values: WorkerRead.from_view(named(values), currency),
        order_by=(Worker.name, Worker.id),
    )


async def read_worker(session: AsyncSession, vis: WorkerVisibility, worker_id: UUID, currency: str) -> WorkerRead:
    """One worker as `vis` may see them; 404 when not found."""
    row = (await session.execute(_worker_view(vis).where(Worker.id == worker_id))).first()
    if row is None:
        raise not_found("worker")
    return WorkerRead.from_view(row, currency)


async def get_worker(session: AsyncSession, worker_id: UUID) -> Worker:
    return await get_or_404(session, Worker, worker_id, "worker")


async def get_worker_for_user(session: AsyncSession, user_id: UUID) -> Worker | None:
    """The caller's own worker profile in the session's organisation (field app), if any."""
    return await session.scalar(select(Worker).where(Worker.user_id == user_id))


async def worker_id_of_user(session: AsyncSession, user_id: UUID) -> UUID | None:
    """The id of `get_worker_for_user`'s profile, read as one column (no ORM object)."""
    return await session.scalar(select(Worker.id).where(Worker.user_id == user_id))


async def update_worker(session: AsyncSession, org_id: UUID, worker_id: UUID, patch: WorkerUpdate) -> Worker:
    worker = await get_worker(session, worker_id)
    if patch.user_id is not msgspec.UNSET and patch.user_id is not None and patch.user_id != worker.user_id:
        await _check_worker_login(session, org_id, patch.user_id)
        await _ensure_login_free(session, patch.user_id, worker.id)
    for field, value in msgspec.structs.asdict(patch).items():
        if value is msgspec.UNSET:
            continue
        if field == "name" and value is None:
            raise FieldError("name", "name cannot be null")
        setattr(worker, field, clean_labels(value, "skills") if field == "skills" else value)
    await flush_or_conflict(session, "worker-login-taken", _LOGIN_TAKEN)
    return worker


async def deactivate_worker(session: AsyncSession, worker_id: UUID) -> None:
    """Soft: bookings keep their assignee; the worker just stops being bookable. Idempotent."""
    worker = await get_worker(session, worker_id)
    if worker.active:
        worker.active = False
        await session.flush()


# --- weekly hours ------------------------------------------------------------------------------


async def get_weekly_hours(session: AsyncSession, worker_id: UUID) -> list[WorkingHours]:
    await get_worker(session, worker_id)
    rows = await session.scalars(
        select(WorkingHours)
        .where(WorkingHours.worker_id == worker_id)
        .order_by(WorkingHours.weekday, WorkingHours.start_time)
    )
    return list(rows)


async def replace_weekly_hours(
    session: AsyncSession, org_id: UUID, worker_id: UUID, items: Sequence[tuple[int, str, str]]
) -> list[WorkingHours]:
    """PUT semantics: the given intervals become the whole week, atomically."""
    intervals = validate_weekly_hours(items)
    # Lock the worker row so two concurrent replacements serialise instead of interleaving.
    await get_or_404(session, Worker, worker_id, "worker", with_for_update=True)
    await session.execute(delete(WorkingHours).where(WorkingHours.worker_id == worker_id))
    rows = [
        WorkingHours(org_id=org_id, worker_id=worker_id, weekday=i.weekday, start_time=i.start, end_time=i.end)
        for i in intervals
    ]
    session.add_all(rows)
    await session.flush()
    return rows


# --- time off ----------------------------------------------------------------------------------


def check_time_off(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise FieldError("starts_at", "timestamps need a UTC offset")
    if ends_at <= starts_at:
        raise FieldError("ends_at", "ends_at must be after starts_at")
    if ends_at - starts_at > MAX_TIME_OFF:
        raise FieldError("ends_at", "time off cannot exceed 366 days; deactivate the worker instead")


async def list_time_off(
    session: AsyncSession,
    vis: WorkerVisibility,
    worker_id: UUID,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> OffsetPagination[TimeOffRead]:
    """Time off, with reasons only where they may be read: reasons are personal (a doctor's
    appointment), so only the worker themselves and holders of workers.contact.view read them
    (for anyone else the column is not even selected)."""
    worker = await get_worker(session, worker_id)
    reasons = vis.contact or (worker.user_id is not None and worker.user_id == vis.user_id)
    columns: list[Any] = [
        TimeOff.id,
        TimeOff.worker_id,
        TimeOff.starts_at,
        TimeOff.ends_at,
        (TimeOff.reason if reasons else null()).label("reason"),
        TimeOff.created_at,
    ]
    stmt: Select[Any] = select(*columns).where(TimeOff.worker_id == worker_id)
    if start is not None:
        stmt = stmt.where(TimeOff.ends_at > start)
    if end is not None:
        stmt = stmt.where(TimeOff.starts_at < end)
    named = _named(stmt)
    return await offset_page(
        session,
        stmt,
        limit=limit,
        offset=offset,
        to=lambda values: TimeOffRead.from_model(named(values), reason_shown=reasons),
        order_by=(TimeOff.starts_at, TimeOff.id),
    )


async def create_time_off(session: AsyncSession, org_id: UUID, worker_id: UUID, data: TimeOffCreate) -> TimeOff:
    check_time_off(data.starts_at, data.ends_at)
    await get_worker(session, worker_id)
    entry = TimeOff(
        org_id=org_id,
        worker_id=worker_id,
        starts_at=data.starts_at.astimezone(UTC),
        ends_at=data.ends_at.astimezone(UTC),
        reason=data.reason,
    )
    session.add(entry)
    await session.flush()
    return entry


async def delete_time_off(session: AsyncSession, worker_id: UUID, time_off_id: UUID) -> None:
    entry = await get_or_404(session, TimeOff, time_off_id, "time off")
    if entry.worker_id != worker_id:
        raise not_found("time off")
    await session.delete(entry)
    await session.flush()


# --- teams -------------------------------------------------------------------------------------


async def _require_workers(session: AsyncSession, worker_ids: Sequence[UUID], field: str = "worker_ids") -> list[UUID]:
    unique = list(dict.fromkeys(worker_ids))
    if not unique:
        return []
    found = set(await session.scalars(select(Worker.id).where(Worker.id.in_(unique))))
    for index, worker_id in enumerate(unique):
        if worker_id not in found:
            raise FieldError(f"{field}[{index}]" if field == "worker_ids" else field, f"unknown worker {worker_id}")
    return unique


async def _team_name_free(session: AsyncSession, name: str, team_id: UUID | None) -> None:
    stmt = select(Team.id).where(func.lower(Team.name) == name.lower())
    if team_id is not None:
        stmt = stmt.where(Team.id != team_id)
    if await session.scalar(stmt) is not None:
        raise conflict("duplicate", f"A team named {name!r} already exists.")


async def create_team(session: AsyncSession, org_id: UUID, data: TeamCreate) -> tuple[Team, list[UUID]]:
    name = " ".join(data.name.split())
    if not name:
        raise FieldError("name", "name cannot be blank")
    await _team_name_free(session, name, None)
    worker_ids = await _require_workers(session, data.worker_ids)
    team = Team(org_id=org_id, name=name)
    session.add(team)
    await flush_or_conflict(session, "duplicate", f"A team named {name!r} already exists.")
    session.add_all([TeamMember(org_id=org_id, team_id=team.id, worker_id=w) for w in worker_ids])
    await session.flush()
    return team, worker_ids


async def get_team(session: AsyncSession, team_id: UUID) -> Team:
    return await get_or_404(session, Team, team_id, "team")


async def read_team(session: AsyncSession, team_id: UUID) -> TeamRead:
    team = await get_team(session, team_id)
    members = await member_ids(session, [team.id])
    return TeamRead.from_model(team, members[team.id])


async def member_ids(session: AsyncSession, team_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    result: dict[UUID, list[UUID]] = {team_id: [] for team_id in team_ids}
    if team_ids:
        rows = await session.execute(
            select(TeamMember.team_id, TeamMember.worker_id)
            .where(TeamMember.team_id.in_(team_ids))
            .order_by(TeamMember.created_at, TeamMember.id)
        )
        for team_id, worker_id in rows:
            result[team_id].append(worker_id)
    return result


async def list_teams(session: AsyncSession, *, limit: int, offset: int) -> OffsetPagination[TeamRead]:
    page = await offset_page(
        session, select(Team), limit=limit, offset=offset, to=lambda team: team, order_by=(Team.name, Team.id)
    )
    members = await member_ids(session, [t.id for t in page.items])
    items = [TeamRead.from_model(t, members[t.id]) for t in page.items]
    return OffsetPagination(items=items, total=page.total, limit=limit, offset=offset)


async def update_team(session: AsyncSession, org_id: UUID, team_id: UUID, patch: TeamUpdate) -> Team:
    team = await get_team(session, team_id)
    if patch.name is not msgspec.UNSET:
        name = " ".join(patch.name.split())
        if not name:
            raise FieldError("name", "name cannot be blank")
        await _team_name_free(session, name, team.id)
        team.name = name
    if patch.worker_ids is not msgspec.UNSET:
        worker_ids = await _require_workers(session, patch.worker_ids)
        await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        session.add_all([TeamMember(org_id=org_id, team_id=team.id, worker_id=w) for w in worker_ids])
    await flush_or_conflict(session, "duplicate", "A team with this name already exists.")
    return team


async def delete_team(session: AsyncSession, team_id: UUID) -> None:
    team = await get_team(session, team_id)
    await session.delete(team)
    await session.flush()


async def add_team_member(session: AsyncSession, org_id: UUID, team_id: UUID, worker_id: UUID) -> None:
    """Idempotent: adding a member twice leaves one membership."""
    await get_team(session, team_id)
    await _require_workers(session, [worker_id], field="worker_id")
    exists = await session.scalar(
        select(TeamMember.id).where(TeamMember.team_id == team_id, TeamMember.worker_id == worker_id)
    )
    if exists is None:
        session.add(TeamMember(org_id=org_id, team_id=team_id, worker_id=worker_id))
        await flush_or_conflict(session, "conflict", "The team membership changed concurrently; retry.")


async def remove_team_member(session: AsyncSession, team_id: UUID, worker_id: UUID) -> None:
    await get_team(session, team_id)
    result = await session.execute(
        delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.worker_id == worker_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("team member")


# --- used by scheduling ------------------------------------------------------------------------


async def team_worker_ids(session: AsyncSession, team_id: UUID) -> list[UUID]:
    """The team's active workers, in the order they joined. 404 when the team is not found."""
    await get_team(session, team_id)
    rows = await session.scalars(
        select(TeamMember.worker_id)
        .join(Worker, Worker.id == TeamMember.worker_id)
        .where(TeamMember.team_id == team_id, Worker.active.is_(True))
        .order_by(TeamMember.created_at, TeamMember.id)
    )
    return list(rows)


def _require_active(unique: list[UUID], active: dict[UUID, bool]) -> None:
    for worker_id in unique:
        if worker_id not in active:
            raise not_found("worker")
        if not active[worker_id]:
            raise Problem(
                404, "not-found", "Not found", f"The worker {worker_id} is not active.", worker_id=str(worker_id)
            )


async def get_active_workers(session: AsyncSession, worker_ids: Sequence[UUID]) -> list[Worker]:
    """The workers, in the order given (duplicates dropped). 404 if any is missing, another
    organisation's, or inactive: none of those can take a booking."""
    unique = list(dict.fromkeys(worker_ids))
    if not unique:
        return []
    rows = {w.id: w for w in await session.scalars(select(Worker).where(Worker.id.in_(unique)))}
    _require_active(unique, {w.id: w.active for w in rows.values()})
    return [rows[w] for w in unique]


async def active_worker_ids(session: AsyncSession, worker_ids: Sequence[UUID]) -> list[UUID]:
    """`get_active_workers`' ids, its checks and 404s included, read as columns (no ORM objects)."""
    unique = list(dict.fromkeys(worker_ids))
    if not unique:
        return []
    rows = await _ACTIVE.rows(session, {"ids": unique})
    _require_active(unique, {r.id: r.active for r in rows})
    return unique


# Every booking write reads it: compiled once, run through asyncpg (lib.sql).
_ACTIVE = Compiled(
    select(Worker.id, Worker.active).where(Worker.id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
)
