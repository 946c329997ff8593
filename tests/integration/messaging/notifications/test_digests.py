"""Digests: settings through the API (settings.manage, per organisation), one digest per period keyed
in the organisation's zone however many runners race, what it reports, and `python -m workers.run
--job notifications-digest-daily --once`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from spotless.domain.messaging.notifications.digests import digest_daily, digest_weekly
from tests.conftest import test_env
from tests.integration.messaging.notifications.conftest import run_deliveries
from tests.support.factories import arrange
from tests.support.factories.scheduling import arrange_world, new_booking
from tests.support.identity import add_member, signup
from tests.support.messaging import deliveries, job_runtime
from tests.support.processes import REPO

TORONTO = ZoneInfo("America/Toronto")


async def _digests(owner_engine, org_id) -> list:
    return [r for r in await deliveries(owner_engine, org_id) if r.kind == "notifications.digest"]


async def test_digest_settings_are_the_organisations_own(client) -> None:
    owner = await signup(client)
    other = await signup(client)
    made = await client.post(
        "/v1/notifications/digests",
        json={"digest_key": "owner-summary", "schedule": "weekly", "recipients": [str(owner.user_id)]},
        headers=owner.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["schedule"] == "weekly" and made.json()["enabled"] is True
    twice = await client.post("/v1/notifications/digests", json={"digest_key": "owner-summary"}, headers=owner.headers)
    assert twice.status_code == 409
    # The same key in another organisation is its own digest; ours cannot be replaced from there.
    theirs = await client.post("/v1/notifications/digests", json={"digest_key": "owner-summary"}, headers=other.headers)
    assert theirs.status_code == 201
    await client.delete("/v1/notifications/digests/owner-summary", headers=other.headers)
    assert (
        await client.put("/v1/notifications/digests/owner-summary", json={"enabled": False}, headers=other.headers)
    ).status_code == 404
    changed = await client.put(
        "/v1/notifications/digests/owner-summary",
        json={"schedule": "daily", "recipients": [str(owner.user_id)]},
        headers=owner.headers,
    )
    assert changed.status_code == 200 and changed.json()["schedule"] == "daily"
    listed = await client.get("/v1/notifications/digests", headers=owner.headers)
    assert [d["digest_key"] for d in listed.json()["items"]] == ["owner-summary"]
    assert (await client.get("/v1/notifications/digests", headers=other.headers)).json()["items"] == []
    # Another organisation's member is not a recipient; a bad key or schedule is a 400 problem.
    foreign = await client.put(
        "/v1/notifications/digests/owner-summary",
        json={"recipients": [str(other.user_id)]},
        headers=owner.headers,
    )
    assert foreign.status_code == 400 and foreign.json()["errors"][0]["field"] == "recipients[0]"
    bad = await client.put(
        "/v1/notifications/digests/owner-summary", json={"schedule": "yearly"}, headers=owner.headers
    )
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    badkey = await client.post("/v1/notifications/digests", json={"digest_key": "Bad Key!"}, headers=owner.headers)
    assert badkey.status_code == 400 and badkey.json()["errors"][0]["field"] == "digest_key"
    # Another organisation cannot delete ours (404, not 403); a worker may not change settings.
    assert (await client.delete("/v1/notifications/digests/owner-summary", headers=other.headers)).status_code == 404
    worker = await add_member(client, owner, "worker")
    assert (await client.get("/v1/notifications/digests", headers=worker.headers)).status_code == 403
    assert (await client.delete("/v1/notifications/digests/owner-summary", headers=owner.headers)).status_code == 204

    settings = await client.put(
        "/v1/notifications/settings", json={"agenda_at": "19:30", "reminders_enabled": False}, headers=owner.headers
    )
    assert settings.status_code == 200, settings.text
    assert settings.json() == {"reminders_enabled": False, "agenda_enabled": True, "agenda_at": "19:30"}
    assert (await client.get("/v1/notifications/settings", headers=other.headers)).json()["agenda_at"] == "18:00"
    wrong = await client.put("/v1/notifications/settings", json={"agenda_at": "25:00"}, headers=owner.headers)
    assert wrong.status_code == 400


async def _world_with_digest(owner_engine, client, schedule: str = "daily"):
    owner = await signup(client)
    made = await client.post(
        "/v1/notifications/digests", json={"digest_key": "owner-summary", "schedule": schedule}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    world = await arrange_world(owner_engine, owner.org_id, workers=1)
    return owner, world


async def test_two_runners_in_one_period_send_one_digest(owner_engine, client, smtp_server) -> None:
    owner, world = await _world_with_digest(owner_engine, client)
    # Yesterday (7 March, local) two visits were done; today (8 March, the DST day) one is planned.
    async with arrange(owner_engine) as db:
        for hh in (9, 13):
            await new_booking(
                db,
                world.org_id,
                world.client_id,
                world.address_id,
                world.service_id,
                starts_at=datetime(2026, 3, 7, hh, tzinfo=TORONTO),
                worker_ids=world.worker_ids,
                status="completed",
            )
        await new_booking(
            db,
            world.org_id,
            world.client_id,
            world.address_id,
            world.service_id,
            starts_at=datetime(2026, 3, 8, 15, tzinfo=TORONTO),
            worker_ids=world.worker_ids,
            status="confirmed",
        )
    first_slot = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT, after the 07:00 send time
    async with job_runtime(**smtp_server.env()):
        # Before 07:00 local nothing goes (a scheduled run waits for the hour).
        await digest_daily(slot=datetime(2026, 3, 8, 10, 45, tzinfo=UTC).isoformat(), now="2026-03-08T10:45:00+00:00")
        assert await _digests(owner_engine, world.org_id) == []
        # Two runners, the same slot and the next ones, then a hand run: one digest.
        await asyncio.gather(
            digest_daily(slot=first_slot.isoformat(), now=first_slot.isoformat()),
            digest_daily(slot=first_slot.isoformat(), now=first_slot.isoformat()),
        )
        for minutes in (15, 30, 600):
            later = first_slot + timedelta(minutes=minutes)
            await digest_daily(slot=later.isoformat(), now=later.isoformat())
        await digest_daily(now=(first_slot + timedelta(hours=1)).isoformat())
        # The weekly one is not configured: nothing.
        await digest_weekly(now=first_slot.isoformat())
        rows = await _digests(owner_engine, world.org_id)
        assert [(r.send_key, r.user_id) for r in rows] == [("2026-03-08", owner.user_id)]
        await run_deliveries(owner_engine, twice=True)
        # The next local day is a new period.
        nextday = datetime(2026, 3, 9, 11, 30, tzinfo=UTC)
        await digest_daily(slot=nextday.isoformat(), now=nextday.isoformat())
        assert sorted(r.send_key for r in await _digests(owner_engine, world.org_id)) == ["2026-03-08", "2026-03-09"]
    received = await smtp_server.wait_for(1)
    assert len(received) == 1 and received[0].rcpt_tos == [owner.email]
    body = received[0].body
    assert "2 visit(s) completed" in body and "1 visit(s)" in body and "not connected yet" in body
    assert received[0].message["List-Unsubscribe"] is None or "unsubscribe" in received[0].message["List-Unsubscribe"]


async def test_digests_stay_inside_their_organisation(owner_engine, client, smtp_server) -> None:
    owner, world = await _world_with_digest(owner_engine, client)
    other, other_world = await _world_with_digest(owner_engine, client)
    async with arrange(owner_engine) as db:
        await new_booking(
            db,
            world.org_id,
            world.client_id,
            world.address_id,
            world.service_id,
            starts_at=datetime(2026, 3, 7, 9, tzinfo=TORONTO),
            worker_ids=world.worker_ids,
            status="completed",
        )
    async with job_runtime(**smtp_server.env()):
        await digest_daily(now="2026-03-08T12:00:00+00:00")
        assert [r.user_id for r in await _digests(owner_engine, world.org_id)] == [owner.user_id]
        assert [r.user_id for r in await _digests(owner_engine, other_world.org_id)] == [other.user_id]
        await run_deliveries(owner_engine)
    received = {m.rcpt_tos[0]: m.body for m in await smtp_server.wait_for(2)}
    assert "1 visit(s) completed" in received[owner.email]
    assert "0 visit(s) completed" in received[other.email]


async def test_the_guides_job_name_runs_one_now(owner_engine, client) -> None:
    owner, world = await _world_with_digest(owner_engine, client)
    env = {**os.environ, **test_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.run", "--job", "notifications-digest-daily", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = await _digests(owner_engine, world.org_id)
    assert [(r.user_id, r.status, r.send_key) for r in rows] == [
        (owner.user_id, "queued", datetime.now(TORONTO).date().isoformat())
    ]
