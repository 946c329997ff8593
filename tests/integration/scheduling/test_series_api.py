"""Recurring bookings: local-time anchoring, materialisation (at creation and by the periodic job,
idempotent), conflicts reported, and edits/cancellations of one or this-and-following."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.scheduling.actors import materialise_series
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup


@pytest.fixture
async def job_runtime(settings: Settings) -> AsyncIterator[None]:
    runtime = build_runtime(settings, application_name="spotless-tests-jobs")
    set_runtime(runtime)
    yield
    set_runtime(None)
    await runtime.close()


def series_body(world, start: date, **extra) -> dict:
    body = {
        "client_id": str(world.client_id),
        "address_id": str(world.address_id),
        "service_id": str(world.service_id),
        "worker_ids": [str(world.worker_ids[0])],
        "frequency": "weekly",
        "start_date": start.isoformat(),
        "start_time": "09:00",
    }
    body.update(extra)
    return body


async def occurrences(client, owner, series_id: str) -> list[dict]:
    response = await client.get("/v1/bookings", params={"series_id": series_id, "limit": 200}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_weekly_series_books_ahead_at_local_time_and_reports_conflicts(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    start = next_weekday(1)
    blocker = await client.post(
        "/v1/bookings", json=world.booking(start + timedelta(days=7), 9, 30), headers=owner.headers
    )
    assert blocker.status_code == 201
    created = await client.post("/v1/series", json=series_body(world, start, count=4), headers=owner.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    series_id = body["series"]["id"]
    assert body["series"]["until"] == (start + timedelta(days=21)).isoformat()
    assert body["series"]["start_time"] == "09:00" and body["series"]["timezone"] == "America/Toronto"
    assert len(body["booking_ids"]) == 3
    [reported] = body["conflicts"]
    assert reported["occurrence_date"] == (start + timedelta(days=7)).isoformat()
    assert reported["reason"] == "booking-conflict"
    assert reported["conflicting_booking_id"] == blocker.json()["id"]
    listed = await client.get(f"/v1/series/{series_id}/conflicts", headers=owner.headers)
    assert [c["id"] for c in listed.json()["items"]] == [reported["id"]]

    booked = await occurrences(client, owner, series_id)
    assert [b["occurrence_date"] for b in booked] == [
        start.isoformat(),
        (start + timedelta(days=14)).isoformat(),
        (start + timedelta(days=21)).isoformat(),
    ]
    assert {datetime.fromisoformat(b["starts_at"]).strftime("%H:%M") for b in booked} == {"09:00"}
    assert all(b["frequency"] == "weekly" for b in booked)


async def test_the_job_materialises_up_to_the_horizon_idempotently_and_across_dst(
    client, owner_engine: AsyncEngine, job_runtime: None
) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    # Anchored after the horizon of today: nothing is booked at creation.
    anchor = date(datetime.now(UTC).year + 1, 3, 1)
    while anchor.weekday() != 0:
        anchor += timedelta(days=1)
    created = await client.post("/v1/series", json=series_body(world, anchor), headers=owner.headers)
    assert created.status_code == 201, created.text
    series_id = created.json()["series"]["id"]
    assert created.json()["booking_ids"] == []
    # A run "on" the anchor day books the next 60 days (weekly, open-ended), crossing spring-forward.
    moment = datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=UTC).isoformat()
    await materialise_series(now=moment)
    first = await occurrences(client, owner, series_id)
    await materialise_series(now=moment)
    await materialise_series(slot=None, now=moment)
    again = await occurrences(client, owner, series_id)
    assert [b["id"] for b in again] == [b["id"] for b in first]
    assert 8 <= len(first) <= 10
    starts = [datetime.fromisoformat(b["starts_at"]) for b in first]
    assert {s.strftime("%H:%M") for s in starts} == {"09:00"}
    # Same local time, two different UTC offsets: the DST change happened in between.
    assert {s.utcoffset() for s in starts} == {timedelta(hours=-5), timedelta(hours=-4)}
    # A later run extends the calendar without touching what exists.
    later = (datetime.fromisoformat(moment) + timedelta(days=14)).isoformat()
    await materialise_series(now=later)
    extended = await occurrences(client, owner, series_id)
    assert len(extended) == len(first) + 2
    assert [b["id"] for b in extended[: len(first)]] == [b["id"] for b in first]
    async with owner_engine.connect() as conn:
        until = await conn.scalar(
            text("SELECT materialised_until FROM booking_series WHERE id = :id"), {"id": series_id}
        )
    assert until == (datetime.fromisoformat(later).date() + timedelta(days=60))


async def test_edit_this_occurrence_and_this_and_following(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=2)
    start = next_weekday(2)
    series = (await client.post("/v1/series", json=series_body(world, start, count=5), headers=owner.headers)).json()
    series_id = series["series"]["id"]
    second = start + timedelta(days=7)
    url = f"/v1/series/{series_id}/occurrences"

    one = await client.patch(
        f"{url}/{second.isoformat()}", json={"scope": "this", "start_time": "13:00"}, headers=owner.headers
    )
    assert one.status_code == 200, one.text
    booked = {b["occurrence_date"]: b for b in await occurrences(client, owner, series_id)}
    assert datetime.fromisoformat(booked[second.isoformat()]["starts_at"]).strftime("%H:%M") == "13:00"
    assert datetime.fromisoformat(booked[start.isoformat()]["starts_at"]).strftime("%H:%M") == "09:00"

    third = start + timedelta(days=14)
    split = await client.patch(
        f"{url}/{third.isoformat()}",
        json={"scope": "following", "start_time": "10:00", "worker_ids": [str(world.worker_ids[1])]},
        headers=owner.headers,
    )
    assert split.status_code == 200, split.text
    new = split.json()
    assert new["previous_series_id"] == series_id and new["series"]["id"] != series_id
    assert new["series"]["start_date"] == third.isoformat() and new["series"]["start_time"] == "10:00"
    assert new["series"]["until"] == (start + timedelta(days=28)).isoformat()
    assert len(new["booking_ids"]) == 3
    old = (await client.get(f"/v1/series/{series_id}", headers=owner.headers)).json()
    assert old["until"] == second.isoformat() and old["status"] == "ended"
    kept = await occurrences(client, owner, series_id)
    assert [b["occurrence_date"] for b in kept] == [start.isoformat(), second.isoformat()]
    moved = await occurrences(client, owner, new["series"]["id"])
    assert [datetime.fromisoformat(b["starts_at"]).strftime("%H:%M") for b in moved] == ["10:00"] * 3
    assert {tuple(b["worker_ids"]) for b in moved} == {(str(world.worker_ids[1]),)}
    # The old 09:00 slots of worker 0 from the split on are free again.
    free = await client.post("/v1/bookings", json=world.booking(third, 9), headers=owner.headers)
    assert free.status_code == 201

    not_an_occurrence = await client.patch(
        f"{url}/{(start + timedelta(days=1)).isoformat()}",
        json={"scope": "this", "start_time": "11:00"},
        headers=owner.headers,
    )
    assert not_an_occurrence.status_code == 404


async def test_cancel_one_then_following(client, job_runtime: None) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    start = next_weekday(3)
    series = (await client.post("/v1/series", json=series_body(world, start), headers=owner.headers)).json()
    series_id = series["series"]["id"]
    url = f"/v1/series/{series_id}/occurrences"
    first = await client.post(
        f"{url}/{start.isoformat()}/cancel", json={"scope": "this", "reason": "holiday"}, headers=owner.headers
    )
    assert first.status_code == 200, first.text
    await materialise_series(now=datetime.now(UTC).isoformat())
    booked = {b["occurrence_date"]: b for b in await occurrences(client, owner, series_id)}
    assert booked[start.isoformat()]["status"] == "cancelled"
    assert booked[start.isoformat()]["cancel_reason"] == "holiday"

    # Beyond the horizon: cancelling keeps a cancelled occurrence so the rule never books it.
    far = start + timedelta(weeks=20)
    far_cancel = await client.post(
        f"{url}/{far.isoformat()}/cancel", json={"scope": "this", "reason": "away"}, headers=owner.headers
    )
    assert far_cancel.status_code == 200, far_cancel.text

    third = start + timedelta(days=14)
    rest = await client.post(
        f"{url}/{third.isoformat()}/cancel", json={"scope": "following", "reason": "moved"}, headers=owner.headers
    )
    assert rest.status_code == 200, rest.text
    ended = (await client.get(f"/v1/series/{series_id}", headers=owner.headers)).json()
    assert ended["status"] == "ended" and ended["until"] == (start + timedelta(days=7)).isoformat()
    statuses = {b["occurrence_date"]: b["status"] for b in await occurrences(client, owner, series_id)}
    assert statuses[(start + timedelta(days=7)).isoformat()] == "pending"
    assert all(s == "cancelled" for d, s in statuses.items() if d >= third.isoformat())
    await materialise_series(now=datetime.now(UTC).isoformat())
    assert {b["occurrence_date"]: b["status"] for b in await occurrences(client, owner, series_id)} == statuses


async def test_monthly_and_validation(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    # "Today" is the organisation's local day (signup's default timezone), not UTC's.
    today = datetime.now(ZoneInfo("America/Toronto")).date()
    # The next 31st (a month with 31 days), with its following short month clamped.
    anchor = today + timedelta(days=1)
    while anchor.day != 31:
        anchor += timedelta(days=1)
    monthly = await client.post(
        "/v1/series", json=series_body(world, anchor, frequency="monthly", count=3), headers=owner.headers
    )
    assert monthly.status_code == 201, monthly.text
    until = date.fromisoformat(monthly.json()["series"]["until"])
    assert until.day in (28, 29, 30, 31) and (until.year * 12 + until.month) - (anchor.year * 12 + anchor.month) == 2

    for bad in (
        series_body(world, anchor, count=3, until=(anchor + timedelta(days=30)).isoformat()),
        series_body(world, today - timedelta(days=1)),
        series_body(world, anchor, day_of_month=3),
        series_body(world, anchor, start_time="9am"),
        series_body(world, anchor, interval=0),
    ):
        response = await client.post("/v1/series", json=bad, headers=owner.headers)
        assert response.status_code == 400, (bad, response.text)
