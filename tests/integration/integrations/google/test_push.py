"""Visits pushed to Google: created, moved once per move (however often the job is delivered),
cancelled with the booking, removed from an unassigned cleaner's calendar, our id in the private
properties, and an edit made in Google overwritten by the next sync, never left to diverge."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.google.actors import poll
from spotless.domain.integrations.google.push import BOOKING_KEY
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.integration.integrations.google.conftest import PUSH, REPUSH, connect_google, gcal_runtime, run_jobs, sql
from tests.support.factories import arrange_world, make_member, next_weekday
from tests.support.identity import signup


def _start(event: dict) -> datetime:
    return datetime.fromisoformat(event["start"]["dateTime"])


async def test_a_moved_booking_moves_its_event_once(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner = await signup(client)
    cleaners = [await make_member(owner_engine, owner.org_id, "worker") for _ in range(2)]
    world = await arrange_world(owner_engine, owner.org_id, workers=2, worker_user_ids=cleaners, service_minutes=60)
    await connect_google(owner_engine, owner.org_id, cleaners[0], "cal-one")
    await connect_google(owner_engine, owner.org_id, cleaners[1], "cal-two")
    await connect_google(owner_engine, owner.org_id, None, "cal-office")  # the organisation's shared calendar
    day = next_weekday(2)
    booked = await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)
    assert booked.status_code == 201
    booking_id = booked.json()["id"]
    async with gcal_runtime(fake_gcal):
        assert await run_jobs(owner_engine, PUSH, twice=True) == 1  # delivered twice: one event per calendar
        (event,) = fake_gcal.live_events("cal-one")
        (office,) = fake_gcal.live_events("cal-office")
        assert fake_gcal.live_events("cal-two") == []  # not their visit
        assert (
            event["extendedProperties"]["private"][BOOKING_KEY]
            == booking_id
            == office["extendedProperties"]["private"][BOOKING_KEY]
        )
        assert _start(event) == datetime.fromisoformat(world.at(day, 10))
        assert fake_gcal.count("POST", "/events") == 2

        moved = await client.post(
            f"/v1/bookings/{booking_id}/reschedule", json={"starts_at": world.at(day, 13)}, headers=owner.headers
        )
        assert moved.status_code == 200, moved.text
        patches = fake_gcal.count("PATCH")
        assert await run_jobs(owner_engine, PUSH, twice=True) == 1
        assert fake_gcal.count("PATCH") == patches + 2  # once per calendar, though delivered twice
        assert _start(fake_gcal.event("cal-one", event["id"])) == datetime.fromisoformat(world.at(day, 13))

        # Given to the other cleaner: it leaves the first one's calendar and enters theirs.
        added = await client.post(
            f"/v1/bookings/{booking_id}/assign", json={"worker_ids": [str(world.worker_ids[1])]}, headers=owner.headers
        )
        assert added.status_code == 200, added.text
        removed = await client.post(
            f"/v1/bookings/{booking_id}/unassign",
            json={"worker_ids": [str(world.worker_ids[0])]},
            headers=owner.headers,
        )
        assert removed.status_code == 200, removed.text
        assert await run_jobs(owner_engine, PUSH) == 2
        assert fake_gcal.live_events("cal-one") == []
        assert [_start(e) for e in fake_gcal.live_events("cal-two")] == [datetime.fromisoformat(world.at(day, 13))]

        cancelled = await client.post(
            f"/v1/bookings/{booking_id}/cancel", json={"reason": "client away"}, headers=owner.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert await run_jobs(owner_engine, PUSH, twice=True) == 1
        assert fake_gcal.live_events("cal-two") == [] and fake_gcal.live_events("cal-office") == []
    mapped = await sql(owner_engine, "SELECT live FROM gcal_events WHERE booking_id = :b", b=booking_id)
    assert len(mapped) == 3 and not any(m.live for m in mapped)


async def test_an_edit_made_in_google_is_overwritten_by_the_next_sync(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner = await signup(client)
    cleaner = await make_member(owner_engine, owner.org_id, "worker")
    world = await arrange_world(owner_engine, owner.org_id, workers=1, worker_user_ids=[cleaner], service_minutes=60)
    await connect_google(owner_engine, owner.org_id, cleaner, "cal-edit")
    day = next_weekday(3)
    booked = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert booked.status_code == 201
    async with gcal_runtime(fake_gcal) as rt:
        await run_jobs(owner_engine, PUSH)
        (event,) = fake_gcal.live_events("cal-edit")
        assert await poll(rt) == {"synced": 1}  # our own event: no busy block, nothing to fix
        assert await sql(owner_engine, "SELECT id FROM external_busy WHERE org_id = :o", o=owner.org_id) == []
        assert await run_jobs(owner_engine, REPUSH) == 0
        # The cleaner drags the visit an hour later in Google.
        later = _start(event) + timedelta(hours=1)
        fake_gcal.edit_event(
            "cal-edit",
            event["id"],
            start={"dateTime": later.isoformat()},
            end={"dateTime": (later + timedelta(hours=1)).isoformat()},
        )
        await sql(
            owner_engine, "UPDATE integration_connections SET next_sync_at = now() WHERE org_id = :o", o=owner.org_id
        )
        assert await poll(rt) == {"synced": 1}
        assert await run_jobs(owner_engine, REPUSH) == 1
    restored = fake_gcal.event("cal-edit", event["id"])
    assert _start(restored) == datetime.fromisoformat(world.at(day, 9))
    (mapping,) = await sql(owner_engine, "SELECT overwritten, etag FROM gcal_events WHERE org_id = :o", o=owner.org_id)
    assert mapping.overwritten == 1 and mapping.etag == restored["etag"]
