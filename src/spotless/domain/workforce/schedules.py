"""Reading schedules for availability and placement: each worker's weekly hours and time off, in
one statement of columns (no ORM objects) whatever the number of workers. Busy time synced from a
worker's own calendar (`ExternalBusy`) comes in the same statement as time off flagged `external`:
it blocks slots and assignment exactly as time off does, at the cost of one more index range scan. Re-exported by
`workforce.services` and `workforce.public`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, any_, bindparam, cast, func, literal, null, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.workforce.hours import HoursInterval, TimeOffInterval, WorkerSchedule
from spotless.domain.workforce.models import ExternalBusy, TimeOff, Worker, WorkingHours
from spotless.lib.sql import Compiled


def _schedule_rows(workers: Any) -> Compiled:
    """One statement for the schedules of the `workers` CTE (worker_id, pos, total): a row per
    worker (kind 0, in `pos` order), per weekly interval on the `:weekdays` (kind 1) and per time
    off overlapping [`:start_utc`, `:end_utc`) (kind 2) and per external busy block overlapping it
    (kind 3, no reason: only times are kept), as columns. Built once (at import) and
    compiled once (lib.sql): a request pays for neither its construction nor its compilation."""

    def none(column: Any, name: str | None = None) -> Any:
        typed = cast(null(), column.type)
        return typed.label(name) if name else typed

    off = (none(TimeOff.id), none(TimeOff.starts_at), none(TimeOff.ends_at), none(TimeOff.reason))
    hours = (none(WorkingHours.weekday), none(WorkingHours.start_time), none(WorkingHours.end_time))
    # The first branch names the columns (and gives their types) for all three.
    of_worker = select(literal(0).label("kind"), workers.c.worker_id, workers.c.pos, workers.c.total)
    of_worker = of_worker.add_columns(
        none(WorkingHours.weekday, "weekday"),
        none(WorkingHours.start_time, "start_time"),
        none(WorkingHours.end_time, "end_time"),
        none(TimeOff.id, "off_id"),
        none(TimeOff.starts_at, "off_starts_at"),
        none(TimeOff.ends_at, "off_ends_at"),
        none(TimeOff.reason, "reason"),
    )
    no_worker = (none(workers.c.pos), none(workers.c.total))
    in_hours = select(literal(1), WorkingHours.worker_id, *no_worker)
    in_hours = in_hours.add_columns(WorkingHours.weekday, WorkingHours.start_time, WorkingHours.end_time, *off)
    in_hours = in_hours.join(workers, workers.c.worker_id == WorkingHours.worker_id)
    in_hours = in_hours.where(WorkingHours.weekday == any_(bindparam("weekdays", type_=ARRAY(Integer))))
    away = select(literal(2), TimeOff.worker_id, *no_worker, *hours, TimeOff.id, TimeOff.starts_at, TimeOff.ends_at)
    away = away.add_columns(TimeOff.reason).join(workers, workers.c.worker_id == TimeOff.worker_id)
    away = away.where(TimeOff.starts_at < bindparam("end_utc"), TimeOff.ends_at > bindparam("start_utc"))
    busy = select(literal(3), ExternalBusy.worker_id, *no_worker, *hours, ExternalBusy.id, ExternalBusy.starts_at)
    busy = busy.add_columns(ExternalBusy.ends_at, none(TimeOff.reason))
    busy = busy.join(workers, workers.c.worker_id == ExternalBusy.worker_id)
    busy = busy.where(ExternalBusy.starts_at < bindparam("end_utc"), ExternalBusy.ends_at > bindparam("start_utc"))
    every = union_all(of_worker, in_hours, away, busy).subquery()
    c = every.c
    return Compiled(select(*c).order_by(c.kind, c.pos, c.weekday, c.start_time, c.off_starts_at))


_SCHEDULES = _schedule_rows(
    select(Worker.id.label("worker_id"), literal(0).label("pos"), literal(0).label("total"))
    .where(Worker.id == any_(bindparam("worker_ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
    .cte("workers")
)
_ACTIVE_SCHEDULES = _schedule_rows(
    select(
        Worker.id.label("worker_id"),
        func.row_number(type_=Integer).over(order_by=(Worker.name, Worker.id)).label("pos"),
        func.count().over().label("total"),
    )
    .where(Worker.active.is_(True))
    .order_by(Worker.name, Worker.id)
    .limit(bindparam("limit", type_=Integer))
    .cte("workers")
)
_EVERY_WEEKDAY = list(range(7))


async def _read_schedules(
    session: AsyncSession, stmt: Compiled, params: dict[str, Any]
) -> tuple[dict[UUID, WorkerSchedule], int]:
    hours: dict[UUID, list[HoursInterval]] = {}
    off: dict[UUID, list[TimeOffInterval]] = {}
    total = 0
    for kind, worker_id, _, count, weekday, start, end, off_id, off_start, off_end, reason in await stmt.rows(
        session, params
    ):
        if kind == 0:
            hours[worker_id], off[worker_id], total = [], [], count or 0
        elif kind == 1:
            hours[worker_id].append(HoursInterval(weekday=weekday, start=start, end=end))
        else:
            off[worker_id].append(
                TimeOffInterval(id=off_id, starts_at=off_start, ends_at=off_end, reason=reason, external=kind == 3)
            )
    found = {w: WorkerSchedule(worker_id=w, hours=tuple(hours[w]), time_off=tuple(off[w])) for w in hours}
    return found, total


async def schedules(
    session: AsyncSession, worker_ids: Sequence[UUID], start_utc: datetime, end_utc: datetime
) -> dict[UUID, WorkerSchedule]:
    """Weekly hours (org local wall-clock) and the time off overlapping [start_utc, end_utc) for
    each worker, in the order given. Workers not found are absent from the result. One statement."""
    unique = list(dict.fromkeys(worker_ids))
    if not unique:
        return {}
    params = {"worker_ids": unique, "weekdays": _EVERY_WEEKDAY, "start_utc": start_utc, "end_utc": end_utc}
    found, _ = await _read_schedules(session, _SCHEDULES, params)
    return {w: found[w] for w in unique if w in found}


async def active_schedules(
    session: AsyncSession, start_utc: datetime, end_utc: datetime, *, limit: int, weekdays: Sequence[int] | None = None
) -> tuple[dict[UUID, WorkerSchedule], int]:
    """The first `limit` active workers by name (then id) with their schedules (as `schedules`;
    with `weekdays`, only the hours on those days), and how many active workers there are in all:
    one statement, whatever the number of workers."""
    days = _EVERY_WEEKDAY if weekdays is None else sorted(set(weekdays))
    params = {"limit": limit, "weekdays": days, "start_utc": start_utc, "end_utc": end_utc}
    return await _read_schedules(session, _ACTIVE_SCHEDULES, params)
