"""Availability: open slots in the organisation's local time, across DST changes, honouring
hours, time off, bookings and the travel buffer, at a constant number of queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.scheduling import timeutil
from tests.support.factories import add_time_off, api_world, next_weekday, set_buffer
from tests.support.identity import signup

TORONTO = timeutil.zone("America/Toronto")


def change_day(kind: str) -> date:
    """The next local day that lasts 23 hours (spring) or 25 hours (fall) in Toronto."""
    day = datetime.now(UTC).date() + timedelta(days=2)
    want = 23 if kind == "spring" else 25
    for _ in range(400):
        start, end = timeutil.days_range_utc(day, day, TORONTO)
        if (end - start).total_seconds() == want * 3600:
            return day
        day += timedelta(days=1)
    raise AssertionError("no DST change within a year")


async def slots(client, owner, world, date_from: date, date_to: date, **params) -> list[dict]:
    response = await client.get(
        "/v1/availability",
        params={
            "service_id": str(world.service_id),
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            **params,
        },
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["slots"]


def by_day(found: list[dict]) -> dict[date, list[str]]:
    out: dict[date, list[str]] = {}
    for s in found:
        local = datetime.fromisoformat(s["starts_at"])
        out.setdefault(local.date(), []).append(local.strftime("%H:%M%z"))
    return out


async def test_eight_oclock_stays_eight_oclock_across_both_dst_changes(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1, service_minutes=120)
    for kind, before, after in (("spring", "-0500", "-0400"), ("fall", "-0400", "-0500")):
        day = change_day(kind)
        days = by_day(await slots(client, owner, world, day - timedelta(days=1), day + timedelta(days=1)))
        assert sorted(days) == [day - timedelta(days=1), day, day + timedelta(days=1)]
        assert days[day - timedelta(days=1)][0] == f"08:00{before}"
        assert days[day][0] == f"08:00{after}"
        assert days[day + timedelta(days=1)][0] == f"08:00{after}"
        # 08:00-17:00 local every day: 2 h jobs every 30 min, last at 15:00, whatever the day's length.
        assert all(len(v) == 15 and v[-1].startswith("15:00") for v in days.values())


async def test_no_slot_at_a_local_time_that_does_not_exist(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1, service_minutes=60, hours=("00:00", "06:00"))
    spring = change_day("spring")
    found = by_day(await slots(client, owner, world, spring, spring))[spring]
    assert not any(s.startswith("02:") for s in found)
    assert found[:5] == ["00:00-0500", "00:30-0500", "01:00-0500", "01:30-0500", "03:00-0400"]
    fall = change_day("fall")
    repeated = by_day(await slots(client, owner, world, fall, fall))[fall]
    # The repeated hour is offered on both offsets.
    assert "01:00-0400" in repeated and "01:00-0500" in repeated


async def test_bookings_time_off_and_buffer_remove_slots(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=2, service_minutes=60)
    await set_buffer(owner_engine, owner.org_id, 30)
    day = next_weekday(2)
    booked = await client.post("/v1/bookings", json=world.booking(day, 11), headers=owner.headers)
    assert booked.status_code == 201
    other = world.worker_ids[1]
    off_start = datetime.fromisoformat(world.at(day, 13))
    await add_time_off(owner_engine, world, other, off_start, off_start + timedelta(hours=2))

    first = [s for s in await slots(client, owner, world, day, day, worker_id=str(world.worker_ids[0]))]
    readings = [datetime.fromisoformat(s["starts_at"]).strftime("%H:%M") for s in first]
    # 11:00-12:00 plus 30 min travel on both sides: a 1 h job must end by 10:30 or start at 12:30.
    assert "09:30" in readings and "10:00" not in readings and "12:00" not in readings and "12:30" in readings
    second = [
        datetime.fromisoformat(s["starts_at"]).strftime("%H:%M")
        for s in await slots(client, owner, world, day, day, worker_id=str(other))
    ]
    assert "12:00" in second and "12:30" not in second and "14:30" not in second and "15:00" in second
    both = await slots(client, owner, world, day, day)
    at_eleven = next(s for s in both if datetime.fromisoformat(s["starts_at"]).strftime("%H:%M") == "11:00")
    assert at_eleven["worker_ids"] == [str(other)]


async def test_an_offered_slot_books_and_then_disappears(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(4)
    offered = await slots(client, owner, world, day, day, step_minutes=60)
    assert [datetime.fromisoformat(s["starts_at"]).hour for s in offered] == list(range(8, 16))
    booked = await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)
    assert booked.status_code == 201
    left = [
        datetime.fromisoformat(s["starts_at"]).hour
        for s in await slots(client, owner, world, day, day, step_minutes=60)
    ]
    assert left == [8, 12, 13, 14, 15]


async def test_range_limits_and_unknown_service(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(0)
    too_long = await client.get(
        "/v1/availability",
        params={
            "service_id": str(world.service_id),
            "date_from": day.isoformat(),
            "date_to": (day + timedelta(days=40)).isoformat(),
        },
        headers=owner.headers,
    )
    assert too_long.status_code == 400
    unknown = await client.get(
        "/v1/availability",
        params={
            "service_id": "00000000-0000-0000-0000-000000000001",
            "date_from": day.isoformat(),
            "date_to": day.isoformat(),
        },
        headers=owner.headers,
    )
    assert unknown.status_code == 404


async def test_query_count_does_not_grow_with_days_or_workers(client, app) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=6)
    day = next_weekday(0)
    for i, worker in enumerate(world.worker_ids):
        await client.post(
            "/v1/bookings", json=world.booking(day + timedelta(days=i), 9, workers=[worker]), headers=owner.headers
        )
    engine = app.state.engine.sync_engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        seen.clear()
        await slots(client, owner, world, day, day, worker_id=str(world.worker_ids[0]))
        one = len(seen)
        seen.clear()
        await slots(client, owner, world, day, day + timedelta(days=30))
        many = len(seen)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert many <= one + 2, (one, many)
