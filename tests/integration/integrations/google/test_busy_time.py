"""Busy time from a cleaner's own Google calendar: it blocks availability and assignment as time off
does after one sync, keeps only times, survives a 410 by a full resync, backs off on rate answers
without losing its cursor, reports visits it now overlaps, and never crosses organisations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.google.actors import poll, sync_connection
from spotless.domain.integrations.google.client import http_client
from spotless.domain.integrations.google.config import gcal_config
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.integration.integrations.google.conftest import connect_google, gcal_runtime, run_jobs, sql
from tests.support.factories import arrange_world, make_member, next_weekday
from tests.support.identity import add_member, signup


async def _slots(client, owner, world, day, worker_id) -> list[str]:
    response = await client.get(
        "/v1/availability",
        params={
            "service_id": str(world.service_id),
            "date_from": day.isoformat(),
            "date_to": day.isoformat(),
            "worker_id": str(worker_id),
            "step_minutes": 60,
        },
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    return [datetime.fromisoformat(s["starts_at"]).strftime("%H:%M") for s in response.json()["slots"]]


async def _cleaner_world(client, owner_engine: AsyncEngine, token: str):
    owner = await signup(client)
    cleaner_user = await make_member(owner_engine, owner.org_id, "worker")
    world = await arrange_world(
        owner_engine, owner.org_id, workers=1, worker_user_ids=[cleaner_user], service_minutes=60
    )
    connection_id = await connect_google(owner_engine, owner.org_id, cleaner_user, token)
    return owner, world, connection_id


def _local(world, day, hh: int) -> datetime:
    return datetime.fromisoformat(world.at(day, hh))


async def test_a_busy_block_blocks_availability_and_assignment_after_one_sync(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner, world, _ = await _cleaner_world(client, owner_engine, "tok-a")
    day = next_weekday(2)
    worker = world.worker_ids[0]
    assert {"10:00", "11:00", "14:00"} <= set(await _slots(client, owner, world, day, worker))
    fake_gcal.add_event("tok-a", _local(world, day, 10), _local(world, day, 12), summary="Dentist")
    # Free (transparent) and cancelled events block nothing.
    fake_gcal.add_event("tok-a", _local(world, day, 14), _local(world, day, 15), transparency="transparent")
    gone = fake_gcal.add_event("tok-a", _local(world, day, 15), _local(world, day, 16))
    fake_gcal.remove_event("tok-a", gone["id"])
    async with gcal_runtime(fake_gcal) as rt:
        outcomes = await poll(rt)
        assert outcomes == {"synced": 1}
        # The runner loops every minute; the connection syncs only once its interval has passed.
        assert await poll(rt) == {}
    left = await _slots(client, owner, world, day, worker)
    assert "10:00" not in left and "11:00" not in left and "09:00" in left and "12:00" in left
    assert "14:00" in left and "15:00" in left
    refused = await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/worker-calendar-busy"
    overridden = await client.post(
        "/v1/bookings", json=world.booking(day, 11, override={"reason": "cleaner agreed"}), headers=owner.headers
    )
    assert overridden.status_code == 201  # overridable by a dispatcher, like time off
    # Only times are kept: not the title, not the description, anywhere in our tables.
    for table in ("external_busy", "gcal_calendars", "gcal_events", "gcal_conflicts", "inbox_events"):
        rows = await sql(owner_engine, f"SELECT t::text AS line FROM {table} t")
        assert not any("Dentist" in r.line or "root canal" in r.line for r in rows), table


async def test_a_410_wipes_and_resyncs_fully(client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar) -> None:
    owner, world, connection_id = await _cleaner_world(client, owner_engine, "tok-b")
    day = next_weekday(3)
    first = fake_gcal.add_event("tok-b", _local(world, day, 9), _local(world, day, 10))
    async with gcal_runtime(fake_gcal) as rt:
        cfg = gcal_config(rt.settings)
        async with http_client() as http:
            done = await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            assert done.report is not None and done.report.full and done.report.busy == 1
            fake_gcal.add_event("tok-b", _local(world, day, 13), _local(world, day, 14))
            again = await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            assert again.report is not None and not again.report.full  # incremental with the token
            # Google drops the token while the first event is deleted: only a full sync can tell.
            fake_gcal.remove_event("tok-b", first["id"])
            fake_gcal.invalidate_sync_tokens("tok-b")
            resynced = await sync_connection(rt, cfg, http, owner.org_id, connection_id)
    assert resynced.report is not None and resynced.report.resynced_after_410 and resynced.report.full
    blocks = await sql(owner_engine, "SELECT starts_at FROM external_busy WHERE org_id = :o", o=owner.org_id)
    assert [b.starts_at for b in blocks] == [_local(world, day, 13)]
    left = await _slots(client, owner, world, day, world.worker_ids[0])
    assert "09:00" in left and "13:00" not in left


async def test_rate_answers_back_off_and_keep_the_cursor(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner, world, connection_id = await _cleaner_world(client, owner_engine, "tok-c")
    day = next_weekday(4)
    async with gcal_runtime(fake_gcal) as rt:
        cfg = gcal_config(rt.settings)
        cfg = type(cfg)(**{**cfg.__dict__, "backoff_base_seconds": 0.01, "max_rate_retries": 1})
        async with http_client() as http:
            await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            (token,) = await sql(
                owner_engine, "SELECT sync_token FROM gcal_calendars WHERE org_id = :o", o=owner.org_id
            )
            fake_gcal.add_event("tok-c", _local(world, day, 9), _local(world, day, 10))
            fake_gcal.rate_limit(5, status=403, retry_after=0)
            limited = await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            assert limited.outcome == "rate_limited"
            (row,) = await sql(
                owner_engine, "SELECT sync_token, backoff_until FROM gcal_calendars WHERE org_id = :o", o=owner.org_id
            )
            assert row.sync_token == token.sync_token and row.backoff_until > datetime.now(UTC)
            calls = fake_gcal.count("GET")
            assert (await sync_connection(rt, cfg, http, owner.org_id, connection_id)).outcome == "backing_off"
            assert fake_gcal.count("GET") == calls  # no call while backing off
            fake_gcal.faults.clear()
            later = datetime.now(UTC) + timedelta(minutes=5)
            resumed = await sync_connection(rt, cfg, http, owner.org_id, connection_id, now=later)
    assert resumed.report is not None and not resumed.report.full and resumed.report.busy == 1


async def test_a_new_busy_block_over_a_visit_is_a_conflict_for_dispatch_not_a_move(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner, world, _ = await _cleaner_world(client, owner_engine, "tok-d")
    day = next_weekday(1)
    booked = await client.post("/v1/bookings", json=world.booking(day, 14), headers=owner.headers)
    assert booked.status_code == 201
    booking = booked.json()
    fake_gcal.add_event("tok-d", _local(world, day, 14) + timedelta(minutes=30), _local(world, day, 16))
    async with gcal_runtime(fake_gcal) as rt:
        assert await poll(rt) == {"synced": 1}
    listed = await client.get("/v1/integrations/google/conflicts", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    (conflict,) = listed.json()["items"]
    assert conflict["booking_id"] == booking["id"] and conflict["worker_id"] == str(world.worker_ids[0])
    assert set(conflict) >= {"busy_starts_at", "busy_ends_at", "booking_starts_at"}
    after = await client.get(f"/v1/bookings/{booking['id']}", headers=owner.headers)
    assert after.json()["starts_at"] == booking["starts_at"]  # reported, never moved
    cleaner = await add_member(client, owner, "worker")
    assert (await client.get("/v1/integrations/google/conflicts", headers=cleaner.headers)).status_code == 403
    # Moved off the busy time, it is no longer a conflict.
    moved = await client.post(
        f"/v1/bookings/{booking['id']}/reschedule", json={"starts_at": world.at(day, 9)}, headers=owner.headers
    )
    assert moved.status_code == 200, moved.text
    assert (await client.get("/v1/integrations/google/conflicts", headers=owner.headers)).json()["items"] == []


async def test_nothing_crosses_organisations(client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar) -> None:
    owner_a, world_a, _ = await _cleaner_world(client, owner_engine, "tok-org-a")
    owner_b, world_b, connection_b = await _cleaner_world(client, owner_engine, "tok-org-b")
    day = next_weekday(5)
    booked_a = await client.post("/v1/bookings", json=world_a.booking(day, 10), headers=owner_a.headers)
    assert booked_a.status_code == 201
    fake_gcal.add_event("tok-org-a", _local(world_a, day, 15), _local(world_a, day, 16))
    fake_gcal.add_event("tok-org-b", _local(world_b, day, 10), _local(world_b, day, 12))
    async with gcal_runtime(fake_gcal) as rt:
        cfg = gcal_config(rt.settings)
        async with http_client() as http:
            # Org B's calendar alone: its busy time lands in B, overlaps nothing of A.
            done = await sync_connection(rt, cfg, http, owner_b.org_id, connection_b)
            assert done.report is not None and done.report.conflicts == []
            # Org A's session cannot reach org B's connection (RLS): nothing synced, nothing written.
            crossed = await sync_connection(rt, cfg, http, owner_a.org_id, connection_b)
            assert crossed.outcome == "inactive"
    rows = await sql(owner_engine, "SELECT org_id, worker_id FROM external_busy")
    assert {(r.org_id, r.worker_id) for r in rows} == {(owner_b.org_id, world_b.worker_ids[0])}
    a_left = await _slots(client, owner_a, world_a, day, world_a.worker_ids[0])
    # A's own booking blocks 10:00; B's busy time (10-12 in B's calendar) blocks nothing in A.
    assert "10:00" not in a_left and "11:00" in a_left and "15:00" in a_left  # (A's calendar not synced yet)
    assert (await client.get("/v1/integrations/google/conflicts", headers=owner_a.headers)).json()["items"] == []
    foreign = await client.get(
        "/v1/availability",
        params={
            "service_id": str(world_b.service_id),
            "date_from": day.isoformat(),
            "date_to": day.isoformat(),
            "worker_id": str(world_b.worker_ids[0]),
        },
        headers=owner_a.headers,
    )
    assert foreign.status_code == 404


async def test_a_connection_that_needs_reconnecting_stops_without_calls(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    from tests.conftest import make_settings
    from tests.fakes.oauth_server import FakeOAuth
    from tests.support.integrations import connect

    oauth = FakeOAuth().start()
    try:
        owner, _, _ = await _cleaner_world(client, owner_engine, "unused")
        other = await make_member(owner_engine, owner.org_id, "worker")
        access, refresh = oauth.issue_grant("google")
        oauth.revoke_grant(refresh)  # the cleaner removed our access in their Google account
        connection_id = await connect(
            owner_engine,
            make_settings(),
            owner.org_id,
            "google",
            owner_user_id=other,
            access_token=access,
            refresh_token=refresh,
            expires_in=0,
        )
        async with gcal_runtime(fake_gcal, **oauth.env()) as rt:
            cfg = gcal_config(rt.settings)
            async with http_client() as http:
                stopped = await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            assert stopped.outcome == "needs_reconnect"
        (row,) = await sql(owner_engine, "SELECT status FROM integration_connections WHERE id = :c", c=connection_id)
        assert row.status == "needs_reconnect"
    finally:
        oauth.stop()
    assert fake_gcal.requests == []


async def test_a_disconnected_calendar_stops_blocking(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner, world, connection_id = await _cleaner_world(client, owner_engine, "tok-z")
    day = next_weekday(2)
    worker = world.worker_ids[0]
    fake_gcal.add_event("tok-z", _local(world, day, 10), _local(world, day, 11))
    async with gcal_runtime(fake_gcal) as rt:
        assert await poll(rt) == {"synced": 1}
        assert "10:00" not in await _slots(client, owner, world, day, worker)
        (cleaner,) = await sql(
            owner_engine, "SELECT owner_user_id FROM integration_connections WHERE id = :c", c=connection_id
        )
        # The cleaner leaves: the office disconnects their calendar.
        gone = await client.delete(
            "/v1/integrations/google", params={"user_id": str(cleaner.owner_user_id)}, headers=owner.headers
        )
        assert gone.status_code == 204, gone.text
        assert await run_jobs(owner_engine, "integrations.gcal_forget_calendar") == 1
        assert await poll(rt) == {}  # nothing left to sync
    assert "10:00" in await _slots(client, owner, world, day, worker)
    (calendar,) = await sql(
        owner_engine, "SELECT sync_token, channel_id FROM gcal_calendars WHERE connection_id = :c", c=connection_id
    )
    assert calendar.sync_token is None and calendar.channel_id is None
