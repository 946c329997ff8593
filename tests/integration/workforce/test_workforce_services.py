"""Worker, hours, time-off and team rules the scheduling code relies on, on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.workforce import services
from spotless.domain.workforce.hours import HoursInterval
from spotless.domain.workforce.schemas import TeamCreate, TimeOffCreate, WorkerCreate, WorkerUpdate
from spotless.lib.errors import Problem
from tests.support.factories import AppSessions, make_member, make_org

T0 = datetime(2026, 3, 2, tzinfo=UTC)


async def _workers(app_sessions: AppSessions, org: uuid.UUID, *names: str) -> list[uuid.UUID]:
    async with app_sessions.scoped(org) as s:
        return [(await services.create_worker(s, org, WorkerCreate(name=n))).id for n in names]


async def test_schedules_give_weekly_hours_and_only_overlapping_time_off(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org = await make_org(owner_engine)
    ana, ben = await _workers(app_sessions, org, "Ana", "Ben")
    async with app_sessions.scoped(org) as s:
        await services.replace_weekly_hours(
            s, org, ana, [(0, "13:00", "17:00"), (0, "08:00", "12:00"), (4, "09:00", "15:30")]
        )
        inside = await services.create_time_off(
            s, org, ana, TimeOffCreate(starts_at=T0 + timedelta(hours=10), ends_at=T0 + timedelta(days=2))
        )
        await services.create_time_off(
            s, org, ana, TimeOffCreate(starts_at=T0 - timedelta(days=5), ends_at=T0 - timedelta(days=4))
        )
        await services.create_time_off(  # ends exactly when the range starts: no overlap
            s, org, ana, TimeOffCreate(starts_at=T0 - timedelta(days=1), ends_at=T0)
        )
    async with app_sessions.scoped(org) as s:
        result = await services.schedules(s, [ana, ben, uuid.uuid4()], T0, T0 + timedelta(days=7))
    assert set(result) == {ana, ben}
    assert result[ana].hours == (
        HoursInterval(weekday=0, start=time(8), end=time(12)),
        HoursInterval(weekday=0, start=time(13), end=time(17)),
        HoursInterval(weekday=4, start=time(9), end=time(15, 30)),
    )
    assert result[ana].hours_on(4) == [HoursInterval(weekday=4, start=time(9), end=time(15, 30))]
    assert [t.id for t in result[ana].time_off] == [inside.id]
    assert result[ben].hours == () and result[ben].time_off == ()


async def test_put_hours_replaces_the_whole_week(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    org = await make_org(owner_engine)
    (ana,) = await _workers(app_sessions, org, "Ana")
    async with app_sessions.scoped(org) as s:
        await services.replace_weekly_hours(s, org, ana, [(0, "08:00", "12:00"), (1, "08:00", "12:00")])
    async with app_sessions.scoped(org) as s:
        await services.replace_weekly_hours(s, org, ana, [(2, "10:00", "11:00")])
    async with app_sessions.scoped(org) as s:
        rows = await services.get_weekly_hours(s, ana)
    assert [(r.weekday, r.start_time, r.end_time) for r in rows] == [(2, time(10), time(11))]
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.replace_weekly_hours(s, org, ana, [(2, "10:00", "12:00"), (2, "11:00", "13:00")])
    assert info.value.status_code == 400
    async with app_sessions.scoped(org) as s:  # a refused week leaves the old one in place
        assert len(await services.get_weekly_hours(s, ana)) == 1


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T0, T0, "ends_at"),
        (T0, T0 - timedelta(minutes=1), "ends_at"),
        (T0, T0 + timedelta(days=400), "ends_at"),
    ],
)
async def test_time_off_must_end_after_it_starts_and_be_bounded(
    owner_engine: AsyncEngine, app_sessions: AppSessions, start: datetime, end: datetime, field: str
) -> None:
    org = await make_org(owner_engine)
    (ana,) = await _workers(app_sessions, org, "Ana")
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.create_time_off(s, org, ana, TimeOffCreate(starts_at=start, ends_at=end))
    assert info.value.status_code == 400
    assert info.value.extra["errors"][0]["field"] == field  # type: ignore[index]


async def test_active_workers_in_order_and_inactive_or_foreign_ones_refused(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    ana, ben, cid = await _workers(app_sessions, org, "Ana", "Ben", "Cid")
    (foreign,) = await _workers(app_sessions, other, "Foreign")
    async with app_sessions.scoped(org) as s:
        assert [w.name for w in await services.get_active_workers(s, [cid, ana, cid])] == ["Cid", "Ana"]
        await services.deactivate_worker(s, ben)
    for ids in ([ana, ben], [ana, foreign], [uuid.uuid4()]):
        async with app_sessions.scoped(org) as s:
            with pytest.raises(Problem) as info:
                await services.get_active_workers(s, ids)
        assert info.value.status_code == 404


async def test_team_worker_ids_lists_active_members(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    ana, ben, cid = await _workers(app_sessions, org, "Ana", "Ben", "Cid")
    async with app_sessions.scoped(org) as s:
        team, _ = await services.create_team(s, org, TeamCreate(name="North", worker_ids=[cid, ana, ben, ana]))
        await services.deactivate_worker(s, ben)
    async with app_sessions.scoped(org) as s:
        assert await services.team_worker_ids(s, team.id) == [cid, ana]
    async with app_sessions.scoped(other) as s:
        with pytest.raises(Problem) as info:
            await services.team_worker_ids(s, team.id)
    assert info.value.status_code == 404
    async with app_sessions.scoped(other) as s:  # another organisation's worker cannot join
        (foreign,) = [(await services.create_worker(s, other, WorkerCreate(name="F"))).id]
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.add_team_member(s, org, team.id, foreign)
    assert info.value.status_code == 400


async def test_worker_login_must_be_a_worker_member_of_this_org(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    login = await make_member(owner_engine, org, "worker")
    dispatcher = await make_member(owner_engine, org, "dispatcher")
    outsider = await make_member(owner_engine, other, "worker")
    async with app_sessions.scoped(org) as s:
        worker = await services.create_worker(s, org, WorkerCreate(name="Ana", user_id=login))
    async with app_sessions.scoped(org) as s:
        assert (await services.get_worker_for_user(s, login)).id == worker.id  # type: ignore[union-attr]
    for user_id, status in ((dispatcher, 400), (outsider, 400), (login, 409)):
        async with app_sessions.scoped(org) as s:
            with pytest.raises(Problem) as info:
                await services.create_worker(s, org, WorkerCreate(name="Again", user_id=user_id))
        assert info.value.status_code == status
    async with app_sessions.scoped(org) as s:
        await services.update_worker(s, org, worker.id, WorkerUpdate(user_id=None, skills=["Windows", "windows"]))
    async with app_sessions.scoped(org) as s:
        refreshed = await services.get_worker(s, worker.id)
        assert (refreshed.user_id, refreshed.skills) == (None, ["windows"])
