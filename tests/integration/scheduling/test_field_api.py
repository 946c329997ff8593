"""Cleaners in the field: their own day's jobs, start (idempotent), pause/resume, finish with
overrun reasons, and the booking's status following along."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import api_worker, api_world
from tests.support.identity import add_member, signup


async def arrange(client, hours_until_start: float = 1.0):  # type: ignore[no-untyped-def]
    owner = await signup(client)
    world = await api_world(client, owner, workers=1, hours=("00:00", "23:59"))
    cleaner = await add_member(client, owner, "worker")
    mine = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id, hours=("00:00", "23:59"))
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=hours_until_start)
    local_day = start.astimezone(world.tz).date()
    # Relative to now, so it may cross local midnight (the end of the hours): override, audited.
    body = world.booking(local_day, 0, workers=[mine], override={"reason": "test runs at any hour"})
    body["starts_at"] = start.isoformat()
    booking = await client.post("/v1/bookings", json=body, headers=owner.headers)
    assert booking.status_code == 201, booking.text
    return owner, world, cleaner, booking.json(), local_day


async def test_worker_sees_only_their_own_jobs_for_a_local_day(client) -> None:
    owner, world, cleaner, booking, day = await arrange(client)
    other = await client.post(
        "/v1/bookings",
        json={**world.booking(day, 0, override={"reason": "any hour"}), "starts_at": booking["starts_at"]},
        headers=owner.headers,
    )
    assert other.status_code == 201
    jobs = await client.get("/v1/worker/jobs", params={"date": day.isoformat()}, headers=cleaner.headers)
    assert jobs.status_code == 200, jobs.text
    [job] = jobs.json()
    assert job["booking_id"] == booking["id"] and job["state"] == "not_started"
    assert job["address"]["line1"] == "1 Main St" and job["planned_minutes"] == 120
    elsewhere = await client.get(
        "/v1/worker/jobs", params={"date": (day + timedelta(days=3)).isoformat()}, headers=cleaner.headers
    )
    assert elsewhere.json() == []
    no_profile = await client.get("/v1/worker/jobs", headers=owner.headers)
    assert no_profile.status_code == 403 and no_profile.json()["type"] == "/problems/no-worker-profile"
    not_mine = await client.post(f"/v1/worker/jobs/{other.json()['id']}/start", headers=cleaner.headers)
    assert not_mine.status_code == 404


async def test_start_is_idempotent_pause_resume_finish(client) -> None:
    owner, _world, cleaner, booking, _day = await arrange(client)
    url = f"/v1/worker/jobs/{booking['id']}"
    unconfirmed = await client.post(f"{url}/start", headers=cleaner.headers)
    assert unconfirmed.status_code == 409 and unconfirmed.json()["type"] == "/problems/illegal-transition"
    await client.post(f"/v1/bookings/{booking['id']}/confirm", headers=owner.headers)

    started = await client.post(f"{url}/start", headers=cleaner.headers)
    assert started.status_code == 201, started.text
    again = await client.post(f"{url}/start", headers=cleaner.headers)
    assert again.status_code == 200
    assert again.json()["entry"]["id"] == started.json()["entry"]["id"]
    assert started.json()["job"]["state"] == "working" and started.json()["job"]["status"] == "in_progress"
    status = (await client.get(f"/v1/bookings/{booking['id']}", headers=owner.headers)).json()["status"]
    assert status == "in_progress"

    paused = await client.post(f"{url}/pause", headers=cleaner.headers)
    assert paused.status_code == 200 and paused.json()["job"]["state"] == "paused"
    assert paused.json()["entry"]["ended_at"] is not None
    assert (await client.post(f"{url}/pause", headers=cleaner.headers)).status_code == 409
    resumed = await client.post(f"{url}/resume", headers=cleaner.headers)
    assert resumed.status_code == 200 and len(resumed.json()["job"]["entries"]) == 2
    finished = await client.post(f"{url}/finish", json={}, headers=cleaner.headers)
    assert finished.status_code == 200, finished.text
    assert finished.json()["job"]["state"] == "finished" and finished.json()["job"]["status"] == "completed"
    assert (await client.get(f"/v1/bookings/{booking['id']}", headers=owner.headers)).json()["status"] == "completed"
    assert (await client.post(f"{url}/finish", json={}, headers=cleaner.headers)).status_code == 409


async def test_finishing_more_than_20_percent_over_needs_a_reason(client, owner_engine: AsyncEngine) -> None:
    owner, _world, cleaner, booking, _day = await arrange(client, hours_until_start=-3)
    await client.post(f"/v1/bookings/{booking['id']}/confirm", headers=owner.headers)
    url = f"/v1/worker/jobs/{booking['id']}"
    assert (await client.post(f"{url}/start", headers=cleaner.headers)).status_code == 201
    # The cleaner actually started 2 h 30 min ago on a 120-minute job: 25% over.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE time_entry SET started_at = now() - interval '150 minutes' WHERE booking_id = :b"),
            {"b": booking["id"]},
        )
    refused = await client.post(f"{url}/finish", json={}, headers=cleaner.headers)
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["type"] == "/problems/overrun-reason-required"
    assert problem["planned_minutes"] == 120 and problem["worked_minutes"] >= 150
    assert problem["errors"][0]["field"] == "reason"
    done = await client.post(f"{url}/finish", json={"reason": "oven was a disaster"}, headers=cleaner.headers)
    assert done.status_code == 200 and done.json()["job"]["status"] == "completed"
    async with owner_engine.connect() as conn:
        reason = await conn.scalar(
            text("SELECT overrun_reason FROM booking_assignment WHERE booking_id = :b"), {"b": booking["id"]}
        )
    assert reason == "oven was a disaster"
