"""A payment hold keeps a client's visits in the schedule (slot, status and cleaners unchanged),
marks them for dispatch, keeps cleaners away (off their list, cannot be started), holds visits
booked meanwhile too, and lets go by itself when the last unpaid invoice behind it is settled."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.scheduling.payment_holds import client_hold_invoices, hold_client_visits, release_client_visits
from tests.support.factories import AppSessions, api_worker, api_world, next_weekday
from tests.support.identity import add_member, signup


async def _arrange(client: Any) -> dict[str, Any]:
    owner = await signup(client)
    world = await api_world(client, owner, workers=0)
    cleaner = await add_member(client, owner, "worker")
    mine = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id)
    day = next_weekday(2)
    visits = []
    for hh in (9, 13):
        made = await client.post("/v1/bookings", json=world.booking(day, hh, workers=[mine]), headers=owner.headers)
        assert made.status_code == 201, made.text
        confirmed = await client.post(f"/v1/bookings/{made.json()['id']}/confirm", headers=owner.headers)
        assert confirmed.status_code == 200, confirmed.text
        visits.append(confirmed.json())
    # Another client of the same organisation, same cleaner, same day: not on hold.
    other = await api_world(client, owner, workers=0)
    theirs = await client.post("/v1/bookings", json=other.booking(day, 15, workers=[mine]), headers=owner.headers)
    assert theirs.status_code == 201, theirs.text
    await client.post(f"/v1/bookings/{theirs.json()['id']}/confirm", headers=owner.headers)
    return {
        "owner": owner,
        "world": world,
        "cleaner": cleaner,
        "worker_id": mine,
        "day": day,
        "visits": visits,
        "other_visit": theirs.json(),
    }


async def _hold(app_sessions: AppSessions, org_id: UUID, client_id: UUID, invoice_id: UUID) -> list[UUID]:
    async with app_sessions.scoped(org_id) as s:
        return await hold_client_visits(s, org_id, client_id, invoice_id, "invoice overdue")


async def _release(app_sessions: AppSessions, org_id: UUID, client_id: UUID, invoice_id: UUID) -> list[UUID]:
    async with app_sessions.scoped(org_id) as s:
        return await release_client_visits(s, org_id, client_id, invoice_id)


async def _jobs(client: Any, a: dict[str, Any]) -> list[str]:
    listed = await client.get("/v1/worker/jobs", params={"date": a["day"].isoformat()}, headers=a["cleaner"].headers)
    assert listed.status_code == 200, listed.text
    return [j["booking_id"] for j in listed.json()]


async def test_held_visits_keep_their_slot_show_to_dispatch_and_no_cleaner_is_sent(
    client, app_sessions: AppSessions, owner_engine: AsyncEngine
) -> None:
    a = await _arrange(client)
    owner, world, visits = a["owner"], a["world"], a["visits"]
    ids = [v["id"] for v in visits]
    assert await _jobs(client, a) == [*ids, a["other_visit"]["id"]]

    held = await _hold(app_sessions, world.org_id, world.client_id, uuid4())
    assert sorted(str(b) for b in held) == sorted(ids)

    for before in visits:
        after = (await client.get(f"/v1/bookings/{before['id']}", headers=owner.headers)).json()
        assert after["payment_hold"] is True
        # Kept in the schedule: same slot, same status, same cleaner; nothing cancelled.
        kept = ("starts_at", "ends_at", "status", "worker_ids", "cancelled_at")
        assert {k: after.get(k) for k in kept} == {k: before.get(k) for k in kept}
    on_hold = await client.get("/v1/bookings", params={"payment_hold": "true"}, headers=owner.headers)
    assert [b["id"] for b in on_hold.json()["items"]] == ids
    off_hold = await client.get("/v1/bookings", params={"payment_hold": "false"}, headers=owner.headers)
    assert [b["id"] for b in off_hold.json()["items"]] == [a["other_visit"]["id"]]

    # The cleaner is not sent: off their day and their bookings list, and cannot start it.
    assert await _jobs(client, a) == [a["other_visit"]["id"]]
    theirs = await client.get("/v1/bookings", headers=a["cleaner"].headers)
    assert [b["id"] for b in theirs.json()["items"]] == [a["other_visit"]["id"]]
    refused = await client.post(f"/v1/worker/jobs/{ids[0]}/start", headers=a["cleaner"].headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/payment-hold"
    assert (await client.get(f"/v1/bookings/{ids[0]}", headers=owner.headers)).json()["status"] == "confirmed"
    async with owner_engine.connect() as conn:
        names = (await conn.execute(text("SELECT args->>0 FROM job_outbox"))).scalars().all()
    assert "scheduling.BookingCancelled" not in names


async def test_a_visit_booked_while_the_client_is_held_is_held_from_the_start(client, app_sessions) -> None:
    a = await _arrange(client)
    owner, world = a["owner"], a["world"]
    await _hold(app_sessions, world.org_id, world.client_id, uuid4())
    later = next_weekday(3, weeks_ahead=2)
    made = await client.post(
        "/v1/bookings", json=world.booking(later, 10, workers=[a["worker_id"]]), headers=owner.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["payment_hold"] is True
    # A series' visits too (booked by the same path as the materialiser's).
    series = await client.post(
        "/v1/series", json=world.series(later + timedelta(days=1), count=2), headers=owner.headers
    )
    assert series.status_code == 201, series.text
    series_visits = await client.get(
        "/v1/bookings", params={"series_id": series.json()["series"]["id"]}, headers=owner.headers
    )
    assert [b["payment_hold"] for b in series_visits.json()["items"]] == [True, True]
    # Another client's new visit is not.
    other = await api_world(client, owner, workers=0)
    free = await client.post("/v1/bookings", json=other.booking(later, 14, workers=[]), headers=owner.headers)
    assert free.json()["payment_hold"] is False


async def test_released_only_when_the_last_invoice_behind_the_hold_is_settled(client, app_sessions) -> None:
    a = await _arrange(client)
    world, ids = a["world"], [v["id"] for v in a["visits"]]
    first, second = uuid4(), uuid4()
    assert len(await _hold(app_sessions, world.org_id, world.client_id, first)) == 2
    assert await _hold(app_sessions, world.org_id, world.client_id, second) == []  # already held
    assert await _hold(app_sessions, world.org_id, world.client_id, second) == []  # redelivered
    async with app_sessions.scoped(world.org_id) as s:
        assert set(await client_hold_invoices(s, world.client_id)) == {first, second}

    assert await _release(app_sessions, world.org_id, world.client_id, first) == []
    assert await _jobs(client, a) == [a["other_visit"]["id"]]

    released = await _release(app_sessions, world.org_id, world.client_id, second)
    assert sorted(str(b) for b in released) == sorted(ids)
    assert await _release(app_sessions, world.org_id, world.client_id, second) == []  # redelivered
    assert await _jobs(client, a) == [*ids, a["other_visit"]["id"]]
    got = await client.get(f"/v1/bookings/{ids[0]}", headers=a["owner"].headers)
    assert got.json()["payment_hold"] is False
    started = await client.post(f"/v1/worker/jobs/{ids[0]}/start", headers=a["cleaner"].headers)
    assert started.status_code == 201, started.text


async def test_a_visit_booked_while_a_hold_is_being_placed_ends_up_held(
    client, app_sessions: AppSessions, owner_engine: AsyncEngine
) -> None:
    a = await _arrange(client)
    owner, world = a["owner"], a["world"]
    later = next_weekday(4, weeks_ahead=2)
    body = world.booking(later, 10, workers=[a["worker_id"]])
    async with app_sessions.scoped(world.org_id) as s:
        await hold_client_visits(s, world.org_id, world.client_id, uuid4())
        booking = asyncio.create_task(client.post("/v1/bookings", json=body, headers=owner.headers))
        # The booking's insert waits on the client's hold lock until the hold commits.
        for _ in range(250):
            async with owner_engine.connect() as conn:
                waiting = await conn.scalar(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                )
            if waiting or booking.done():
                break
            await asyncio.sleep(0.02)
        assert waiting == 1 and not booking.done()
    made = await booking
    assert made.status_code == 201, made.text
    assert made.json()["payment_hold"] is True


async def test_another_organisation_sees_none_of_it(client, app_sessions: AppSessions) -> None:
    a = await _arrange(client)
    world = a["world"]
    await _hold(app_sessions, world.org_id, world.client_id, uuid4())
    stranger = await signup(client)
    other_world = await api_world(client, stranger, workers=0)
    theirs = await client.post(
        "/v1/bookings", json=other_world.booking(a["day"], 9, workers=[]), headers=stranger.headers
    )
    assert theirs.json()["payment_hold"] is False
    listed = await client.get("/v1/bookings", params={"payment_hold": "true"}, headers=stranger.headers)
    assert listed.json()["items"] == []
    async with app_sessions.scoped(stranger.org_id) as s:
        assert await client_hold_invoices(s, world.client_id) == []
        # Releasing from elsewhere touches nothing here.
        assert await release_client_visits(s, stranger.org_id, world.client_id, uuid4()) == []
    held = await client.get("/v1/bookings", params={"payment_hold": "true"}, headers=a["owner"].headers)
    assert len(held.json()["items"]) == 2
