"""Cleaners get tomorrow's jobs once, at the organisation's chosen local time, and word when one of
today's jobs moves or is cancelled; invoices go out with their pay link and PDF attached."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from spotless.domain.messaging.notifications.cleaner_agenda import send_agendas, tell_cleaners_of_change
from spotless.domain.messaging.notifications.models import NotificationSettings
from tests.integration.messaging.notifications.conftest import run_deliveries, sql
from tests.support.factories import AppSessions, arrange
from tests.support.factories.scheduling import arrange_world, new_booking
from tests.support.messaging import deliveries, job_runtime

TORONTO = ZoneInfo("America/Toronto")


async def test_tomorrows_jobs_go_once_per_cleaner_at_the_chosen_local_time(owner_engine, smtp_server) -> None:
    world = await arrange_world(owner_engine, workers=2)
    async with arrange(owner_engine) as db:
        db.add(NotificationSettings(org_id=world.org_id, agenda_at=time(19, 30)))
        for hh, worker in ((9, world.worker_ids[0]), (13, world.worker_ids[0]), (10, world.worker_ids[1])):
            await new_booking(
                db,
                world.org_id,
                world.client_id,
                world.address_id,
                world.service_id,
                starts_at=datetime(2026, 11, 2, hh, tzinfo=TORONTO),
                worker_ids=[worker],
                status="confirmed",
            )
    for i, worker_id in enumerate(world.worker_ids):
        await sql(
            owner_engine, "UPDATE worker SET email = :e WHERE id = :id", e=f"cleaner{i}@example.com", id=worker_id
        )
    # 1 November (the autumn change day): 19:29 local is not yet, 19:30 is.
    before = datetime(2026, 11, 1, 19, 29, tzinfo=TORONTO).astimezone(UTC)
    async with job_runtime(**smtp_server.env()):
        await send_agendas(now=before.isoformat())
        assert [r for r in await deliveries(owner_engine, world.org_id) if r.kind == "cleaner.agenda"] == []
        for minutes in (1, 6, 200):
            await send_agendas(now=(before + timedelta(minutes=minutes)).isoformat())
        agendas = [r for r in await deliveries(owner_engine, world.org_id) if r.kind == "cleaner.agenda"]
        assert sorted((r.worker_id, r.send_key) for r in agendas if r.channel == "email") == sorted(
            (w, "2026-11-02") for w in world.worker_ids
        )
        await run_deliveries(owner_engine)
    received = {m.rcpt_tos[0]: m for m in await smtp_server.wait_for(2)}
    assert set(received) == {"cleaner0@example.com", "cleaner1@example.com"}
    first = received["cleaner0@example.com"]
    assert "(2)" in str(first.message["Subject"]) and "09:00" in first.body and "13:00" in first.body
    assert "10:00" not in first.body  # a colleague's job is not listed


async def test_a_change_to_a_job_today_tells_its_cleaner(owner_engine, app_sessions: AppSessions) -> None:
    world = await arrange_world(owner_engine, workers=1)
    today = datetime(2026, 3, 8, 15, tzinfo=TORONTO)
    async with arrange(owner_engine) as db:
        today_job = await new_booking(
            db, world.org_id, world.client_id, world.address_id, world.service_id,
            starts_at=today, worker_ids=world.worker_ids, status="confirmed",
        )  # fmt: skip
        later_job = await new_booking(
            db, world.org_id, world.client_id, world.address_id, world.service_id,
            starts_at=today + timedelta(days=3), worker_ids=world.worker_ids, status="confirmed",
        )  # fmt: skip
    now = datetime(2026, 3, 8, 9, tzinfo=TORONTO)
    async with job_runtime(), app_sessions.scoped(world.org_id) as session:
        assert await tell_cleaners_of_change(session, world.org_id, today_job.id, "rescheduled", today, "e1", now) == 1
        assert await tell_cleaners_of_change(session, world.org_id, today_job.id, "rescheduled", today, "e1", now) == 0
        assert (
            await tell_cleaners_of_change(
                session, world.org_id, later_job.id, "cancelled", today + timedelta(days=3), "e2", now
            )
            == 0
        )
    rows = [r for r in await deliveries(owner_engine, world.org_id) if r.kind == "cleaner.job_changed"]
    assert {(r.worker_id, r.subject_id) for r in rows} == {(world.worker_ids[0], today_job.id)}
