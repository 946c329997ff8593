"""Bookings through the API: pricing snapshot, no double booking, hours and time off, overrides,
the life cycle, list filters in local days, and what cleaners may see."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import add_time_off, api_worker, api_world, next_weekday, set_buffer
from tests.support.identity import add_member, signup


async def test_create_prices_times_and_answers_in_local_time(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, service_minutes=150, price_cents=12_000)
    day = next_weekday(1)
    response = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["starts_at"] == world.at(day, 9)
    assert body["ends_at"] == world.at(day, 11, 30)
    assert body["timezone"] == "America/Toronto"
    assert body["estimated_minutes"] == 150
    assert body["worker_ids"] == [str(world.worker_ids[0])]
    assert body["currency"] == "CAD"
    assert body["price"]["subtotal_cents"] == 12_000
    assert body["total_cents"] == body["price"]["total_cents"] >= 12_000
    assert body["price"]["line_items"][0]["kind"] == "base"
    fetched = await client.get(f"/v1/bookings/{body['id']}", headers=owner.headers)
    assert fetched.json() == body


async def test_same_worker_same_time_is_a_409_naming_the_booking(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=2)
    day = next_weekday(2)
    first = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert first.status_code == 201
    overlapping = await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)
    assert overlapping.status_code == 409
    problem = overlapping.json()
    assert problem["type"] == "/problems/booking-conflict"
    assert problem["conflicting_booking_id"] == first.json()["id"]
    assert problem["worker_id"] == str(world.worker_ids[0])
    # Another worker at the same time is fine; back-to-back with no buffer too.
    other = await client.post(
        "/v1/bookings", json=world.booking(day, 10, workers=[world.worker_ids[1]]), headers=owner.headers
    )
    assert other.status_code == 201
    after = await client.post("/v1/bookings", json=world.booking(day, 11), headers=owner.headers)
    assert after.status_code == 201, after.text


async def test_travel_buffer_keeps_a_gap_between_jobs(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    await set_buffer(owner_engine, owner.org_id, 30)
    day = next_weekday(3)
    assert (await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)).status_code == 201
    # The 10:00-12:00 job needs 30 minutes of travel after it, and a job before it needs its own.
    for hh, mm in ((12, 0), (12, 15), (7 + 1, 0), (8, 15)):
        refused = await client.post("/v1/bookings", json=world.booking(day, hh, mm), headers=owner.headers)
        assert refused.status_code == 409, (hh, mm, refused.text)
    assert (
        await client.post("/v1/bookings", json=world.booking(day, 12, 30), headers=owner.headers)
    ).status_code == 201
    # 07:30-09:30 would end right where the buffer before 10:00 starts; hours start at 08:00 though.
    early = await client.post("/v1/bookings", json=world.booking(day, 7, 30), headers=owner.headers)
    assert early.json()["type"] == "/problems/outside-working-hours"


async def test_hours_and_time_off_refuse_unless_overridden_and_audited(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    dispatcher = await add_member(client, owner, "dispatcher")
    day = next_weekday(4)
    late = await client.post("/v1/bookings", json=world.booking(day, 16), headers=owner.headers)
    assert late.status_code == 409
    assert late.json()["type"] == "/problems/outside-working-hours"
    assert late.json()["worker_id"] == str(world.worker_ids[0])

    start = datetime.fromisoformat(world.at(day + timedelta(days=1), 0))
    await add_time_off(owner_engine, world, world.worker_ids[0], start, start + timedelta(days=1))
    off = await client.post("/v1/bookings", json=world.booking(day + timedelta(days=1), 9), headers=owner.headers)
    assert off.status_code == 409
    assert off.json()["type"] == "/problems/worker-time-off"

    overridden = await client.post(
        "/v1/bookings",
        json=world.booking(day, 16, override={"reason": "client asked, Sam agreed"}),
        headers=dispatcher.headers,
    )
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["override_reason"] == "client asked, Sam agreed"
    async with owner_engine.connect() as conn:
        audit = (
            await conn.execute(
                text("SELECT action, actor_user_id, metadata FROM admin_audit_logs WHERE resource_id = :id"),
                {"id": overridden.json()["id"]},
            )
        ).one()
    assert audit.action == "booking.override.create"
    assert audit.actor_user_id == dispatcher.user_id
    assert audit.metadata["reason"] == "client asked, Sam agreed"
    assert audit.metadata["overridden"][0]["type"] == "outside-working-hours"


async def test_life_cycle_and_illegal_transitions(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(1, weeks_ahead=2)
    booking = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    url = f"/v1/bookings/{booking['id']}"

    illegal = await client.post(f"{url}/complete", headers=owner.headers)
    assert illegal.status_code == 409
    assert illegal.json()["type"] == "/problems/illegal-transition"
    assert (illegal.json()["from"], illegal.json()["to"]) == ("pending", "completed")

    confirmed = await client.post(f"{url}/confirm", headers=owner.headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["confirmed_at"] is not None
    again = await client.post(f"{url}/confirm", headers=owner.headers)
    assert again.status_code == 409 and again.json()["from"] == "confirmed"

    cancelled = await client.post(f"{url}/cancel", json={"reason": "client away"}, headers=owner.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_reason"] == "client away"
    assert (await client.post(f"{url}/confirm", headers=owner.headers)).status_code == 409
    moved = await client.post(f"{url}/reschedule", json={"starts_at": world.at(day, 13)}, headers=owner.headers)
    assert moved.status_code == 409 and moved.json()["type"] == "/problems/booking-not-editable"
    # Cancelling released the worker: the same slot can be booked again.
    again = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert again.status_code == 201
    missing_reason = await client.post(f"/v1/bookings/{again.json()['id']}/cancel", json={}, headers=owner.headers)
    assert missing_reason.status_code == 400


async def test_reschedule_moves_the_assignment_with_the_booking(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(2, weeks_ahead=2)
    first = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    second = (await client.post("/v1/bookings", json=world.booking(day, 13), headers=owner.headers)).json()
    into_second = await client.post(
        f"/v1/bookings/{first['id']}/reschedule", json={"starts_at": world.at(day, 12)}, headers=owner.headers
    )
    assert into_second.status_code == 409
    assert into_second.json()["conflicting_booking_id"] == second["id"]
    moved = await client.post(
        f"/v1/bookings/{first['id']}/reschedule", json={"starts_at": world.at(day, 15)}, headers=owner.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["starts_at"] == world.at(day, 15) and moved.json()["ends_at"] == world.at(day, 17)
    # The worker's time moved with the booking: 09:00 is free again, 15:00 is taken.
    assert (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).status_code == 201
    taken = await client.post("/v1/bookings", json=world.booking(day, 15), headers=owner.headers)
    assert taken.status_code == 409 and taken.json()["conflicting_booking_id"] == first["id"]


async def test_assign_unassign_and_team(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=3)
    day = next_weekday(3, weeks_ahead=2)
    booking = (await client.post("/v1/bookings", json=world.booking(day, 9, workers=[]), headers=owner.headers)).json()
    assert booking["worker_ids"] == []
    url = f"/v1/bookings/{booking['id']}"
    added = await client.post(
        f"{url}/assign", json={"worker_ids": [str(w) for w in world.worker_ids[:2]]}, headers=owner.headers
    )
    assert added.status_code == 200
    assert added.json()["worker_ids"] == [str(w) for w in world.worker_ids[:2]]
    busy = await client.post(
        "/v1/bookings", json=world.booking(day, 10, workers=[world.worker_ids[1]]), headers=owner.headers
    )
    assert busy.status_code == 409 and busy.json()["conflicting_booking_id"] == booking["id"]
    removed = await client.post(
        f"{url}/unassign", json={"worker_ids": [str(world.worker_ids[1])]}, headers=owner.headers
    )
    assert removed.json()["worker_ids"] == [str(world.worker_ids[0])]
    free = await client.post(
        "/v1/bookings", json=world.booking(day, 10, workers=[world.worker_ids[1]]), headers=owner.headers
    )
    assert free.status_code == 201
    not_assigned = await client.post(
        f"{url}/unassign", json={"worker_ids": [str(world.worker_ids[2])]}, headers=owner.headers
    )
    assert not_assigned.status_code == 404

    team = await client.post(
        "/v1/teams", json={"name": "Blue", "worker_ids": [str(world.worker_ids[2])]}, headers=owner.headers
    )
    assert team.status_code == 201, team.text
    by_team = await client.post(
        "/v1/bookings", json=world.booking(day, 13, workers=[], team_id=team.json()["id"]), headers=owner.headers
    )
    assert by_team.status_code == 201, by_team.text
    assert by_team.json()["worker_ids"] == [str(world.worker_ids[2])]


async def test_blocked_client_and_unknown_references(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(4, weeks_ahead=2)
    blocked = await client.patch(f"/v1/clients/{world.client_id}", json={"blocked": True}, headers=owner.headers)
    assert blocked.status_code == 200, blocked.text
    refused = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/client-blocked"
    await client.patch(f"/v1/clients/{world.client_id}", json={"blocked": False}, headers=owner.headers)
    unknown_worker = await client.post(
        "/v1/bookings", json=world.booking(day, 9, workers=[UUID(int=7)]), headers=owner.headers
    )
    assert unknown_worker.status_code == 404
    naive = world.booking(day, 9)
    naive["starts_at"] = naive["starts_at"][:19]
    assert (await client.post("/v1/bookings", json=naive, headers=owner.headers)).status_code == 400
    extra = world.booking(day, 9, surprise=True)
    assert (await client.post("/v1/bookings", json=extra, headers=owner.headers)).status_code == 400


async def test_idempotency_key_replays_the_created_booking(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    body = world.booking(next_weekday(0, weeks_ahead=3), 9)
    headers = {**owner.headers, "Idempotency-Key": "book-123"}
    first = await client.post("/v1/bookings", json=body, headers=headers)
    second = await client.post("/v1/bookings", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    listed = await client.get("/v1/bookings", headers=owner.headers)
    assert [b["id"] for b in listed.json()["items"]] == [first.json()["id"]]


async def test_list_filters_use_local_days(client) -> None:
    owner = await signup(client)  # America/Toronto
    world = await api_world(client, owner, workers=2, hours=("00:00", "23:59"))
    day = next_weekday(0, weeks_ahead=2)
    # 22:30 local on `day` is already the next day in UTC: it belongs to `day`.
    late = (
        await client.post("/v1/bookings", json=world.booking(day, 22, 30, workers=[]), headers=owner.headers)
    ).json()
    assert datetime.fromisoformat(late["starts_at"]).astimezone(UTC).date() == day + timedelta(days=1)
    nxt = (
        await client.post("/v1/bookings", json=world.booking(day + timedelta(days=1), 9), headers=owner.headers)
    ).json()
    early = (
        await client.post(
            "/v1/bookings", json=world.booking(day, 6, workers=[world.worker_ids[1]]), headers=owner.headers
        )
    ).json()
    await client.post(f"/v1/bookings/{early['id']}/confirm", headers=owner.headers)

    def ids(response) -> list[str]:
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["items"]]

    one_day = {"date_from": day.isoformat(), "date_to": day.isoformat()}
    assert ids(await client.get("/v1/bookings", params=one_day, headers=owner.headers)) == [early["id"], late["id"]]
    next_day = {"date_from": (day + timedelta(days=1)).isoformat(), "date_to": (day + timedelta(days=1)).isoformat()}
    assert ids(await client.get("/v1/bookings", params=next_day, headers=owner.headers)) == [nxt["id"]]
    assert ids(await client.get("/v1/bookings", params={"status": "confirmed"}, headers=owner.headers)) == [early["id"]]
    by_worker = {"worker_id": str(world.worker_ids[0])}
    assert ids(await client.get("/v1/bookings", params=by_worker, headers=owner.headers)) == [nxt["id"]]
    by_client = {"client_id": str(world.client_id), "limit": 2}
    page = await client.get("/v1/bookings", params=by_client, headers=owner.headers)
    assert (page.json()["limit"], page.json()["has_more"]) == (2, True) and ids(page) == [early["id"], late["id"]]
    rest = await client.get(
        "/v1/bookings", params={**by_client, "cursor": page.json()["next_cursor"]}, headers=owner.headers
    )
    assert ids(rest) == [nxt["id"]] and (rest.json()["has_more"], rest.json()["next_cursor"]) == (False, None)
    bad = await client.get("/v1/bookings", params={"status": "lost"}, headers=owner.headers)
    assert bad.status_code == 400
    backwards = {"date_from": day.isoformat(), "date_to": (day - timedelta(days=1)).isoformat()}
    assert (await client.get("/v1/bookings", params=backwards, headers=owner.headers)).status_code == 400


async def test_cleaners_see_only_their_own_bookings(client) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    cleaner = await add_member(client, owner, "worker")
    own_worker = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id)
    day = next_weekday(1, weeks_ahead=3)
    mine = (
        await client.post("/v1/bookings", json=world.booking(day, 9, workers=[own_worker]), headers=owner.headers)
    ).json()
    theirs = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    listed = await client.get("/v1/bookings", headers=cleaner.headers)
    assert [b["id"] for b in listed.json()["items"]] == [mine["id"]]
    assert (await client.get(f"/v1/bookings/{theirs['id']}", headers=cleaner.headers)).status_code == 404
    assert (await client.get(f"/v1/bookings/{mine['id']}", headers=cleaner.headers)).status_code == 200
    assert (await client.post("/v1/bookings", json=world.booking(day, 13), headers=cleaner.headers)).status_code == 403


async def test_bookings_total_counts_committed_actions_only(client, worker_process, owner_engine) -> None:
    """Counted by the `system.count_booking` subscriber (in the worker) from scheduling's events:
    the API's /metrics aggregates the worker's counters."""
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(2, weeks_ahead=3)

    async def counted(action: str) -> float:
        metrics = (await client.get("/metrics")).text
        for line in metrics.splitlines():
            if line.startswith(f'bookings_total{{action="{action}"}}'):
                return float(line.split()[-1])
        return 0.0

    async def reaches(action: str, expected: float) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if await counted(action) == expected:
                return True
            await asyncio.sleep(0.1)
        return False

    before = await counted("created")
    booking = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    conflict = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert conflict.status_code == 409
    assert await reaches("created", before + 1), worker_process.log()
    confirmed_before = await counted("confirmed")
    await client.post(f"/v1/bookings/{booking['id']}/confirm", headers=owner.headers)
    assert await reaches("confirmed", confirmed_before + 1), worker_process.log()
    assert await counted("created") == before + 1
    async with owner_engine.connect() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE actor_name = 'system.count_booking'"))
    assert rows == 2  # the refused (rolled-back) booking emitted nothing


async def test_scheduling_settings_set_the_buffer_for_new_bookings(client) -> None:
    owner = await signup(client)
    viewer = await add_member(client, owner, "viewer")
    assert (await client.get("/v1/scheduling/settings", headers=viewer.headers)).json() == {
        "travel_buffer_minutes": 0,
        "slot_step_minutes": 30,
    }
    refused = await client.put("/v1/scheduling/settings", json={"travel_buffer_minutes": 15}, headers=viewer.headers)
    assert refused.status_code == 403
    assert (
        await client.put("/v1/scheduling/settings", json={"travel_buffer_minutes": 500}, headers=owner.headers)
    ).status_code == 400
    updated = await client.put("/v1/scheduling/settings", json={"travel_buffer_minutes": 45}, headers=owner.headers)
    assert updated.status_code == 200 and updated.json()["travel_buffer_minutes"] == 45
    world = await api_world(client, owner)
    day = next_weekday(5, weeks_ahead=3)
    assert (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).status_code == 201
    too_close = await client.post("/v1/bookings", json=world.booking(day, 11, 30), headers=owner.headers)
    assert too_close.status_code == 409 and too_close.json()["type"] == "/problems/booking-conflict"
    assert (
        await client.post("/v1/bookings", json=world.booking(day, 11, 45), headers=owner.headers)
    ).status_code == 201
