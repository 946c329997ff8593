"""The reminder before each visit, "the same local time the day before" in the organisation's zone,
driven by the scan job with the clock passed in, delivered over SMTP: once, at the right moment on
both DST change days of 2026 in Toronto, not after a cancel or a hold, and anew (once) for a visit
moved inside the window. Nothing crosses organisations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from spotless.domain.messaging.notifications.reminders import send_reminders
from tests.integration.messaging.notifications.conftest import run_deliveries, sql
from tests.support.factories import arrange
from tests.support.factories.scheduling import arrange_world, new_booking
from tests.support.messaging import deliveries, job_runtime

TORONTO = ZoneInfo("America/Toronto")


async def _visit(owner_engine, world, starts_at: datetime, status: str = "confirmed"):
    async with arrange(owner_engine) as db:
        booking = await new_booking(
            db,
            world.org_id,
            world.client_id,
            world.address_id,
            world.service_id,
            starts_at=starts_at,
            worker_ids=world.worker_ids[:1],
            status=status,
        )
    return booking.id


async def _scan(at: datetime) -> None:
    await send_reminders(now=at.isoformat())


async def _reminders(owner_engine, org_id) -> list:
    return [r for r in await deliveries(owner_engine, org_id) if r.kind == "booking.reminder" and r.channel == "email"]


async def test_reminders_go_once_at_the_same_local_time_the_day_before_on_both_dst_days(
    owner_engine, smtp_server
) -> None:
    world = await arrange_world(owner_engine, workers=1)
    # Reminders due ON the change days: 8 March (clocks go forward at 02:00) and 1 November (back).
    spring = datetime(2026, 3, 9, 9, 0, tzinfo=TORONTO)  # reminder 8 March 09:00 EDT = 13:00 UTC
    autumn = datetime(2026, 11, 2, 9, 0, tzinfo=TORONTO)  # reminder 1 November 09:00 EST = 14:00 UTC
    # And visits ON the change days, reminded the day before: 23 and 25 real hours earlier.
    on_spring = datetime(2026, 3, 8, 9, 0, tzinfo=TORONTO)  # reminder 7 March 09:00 EST = 14:00 UTC
    on_autumn = datetime(2026, 11, 1, 9, 0, tzinfo=TORONTO)  # reminder 31 October 09:00 EDT = 13:00 UTC
    cases = [
        (spring, datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        (autumn, datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),
        (on_spring, datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),
        (on_autumn, datetime(2026, 10, 31, 13, 0, tzinfo=UTC)),
    ]
    await sql(owner_engine, "UPDATE client SET email = 'ada@example.com' WHERE id = :id", id=world.client_id)
    async with job_runtime(**smtp_server.env()):
        for number, (visit_at, due) in enumerate(cases, start=1):
            booking_id = await _visit(owner_engine, world, visit_at)
            await _scan(due - timedelta(minutes=1))
            assert len(await _reminders(owner_engine, world.org_id)) == number - 1, visit_at
            # Two scans at once, then later ones the same day: one request.
            await asyncio.gather(_scan(due), _scan(due))
            await _scan(due + timedelta(minutes=5))
            await _scan(visit_at - timedelta(minutes=1))
            mine = [r for r in await _reminders(owner_engine, world.org_id) if r.subject_id == booking_id]
            assert len(mine) == 1, visit_at
            assert mine[0].send_key == visit_at.astimezone(UTC).isoformat()
            await run_deliveries(owner_engine, twice=True)
            assert (await _reminders(owner_engine, world.org_id))[-1].status == "sent"
            assert (due.astimezone(TORONTO).hour, due.astimezone(TORONTO).minute) == (9, 0)
    received = await smtp_server.wait_for(len(cases))
    assert len(received) == len(cases)
    assert all("tomorrow at 09:00" in str(m.message["Subject"]) for m in received)


async def test_no_reminder_for_a_visit_cancelled_or_held_since_and_one_new_one_when_moved(
    owner_engine, smtp_server
) -> None:
    world = await arrange_world(owner_engine, workers=1)
    await sql(owner_engine, "UPDATE client SET email = 'ada@example.com' WHERE id = :id", id=world.client_id)
    visit_at = datetime(2026, 3, 9, 9, 0, tzinfo=TORONTO)
    due = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    cancelled = await _visit(owner_engine, world, visit_at)
    held = await _visit(owner_engine, world, visit_at + timedelta(hours=3))
    moved = await _visit(owner_engine, world, visit_at + timedelta(hours=6))
    pending = await _visit(owner_engine, world, visit_at - timedelta(hours=2), status="pending")
    async with job_runtime(**smtp_server.env()):
        await _scan(due + timedelta(hours=6, minutes=1))  # every one of them is due
        requested = {r.subject_id for r in await _reminders(owner_engine, world.org_id)}
        assert requested == {cancelled, held, moved}  # a pending visit is not reminded

        # Since then: one cancelled, one on payment hold, one moved later the same evening.
        await sql(owner_engine, "UPDATE booking SET status = 'cancelled' WHERE id = :id", id=cancelled)
        await sql(owner_engine, "UPDATE booking SET payment_hold = true WHERE id = :id", id=held)
        new_start = visit_at + timedelta(hours=9)
        await sql(
            owner_engine,
            "UPDATE booking SET starts_at = :s, ends_at = :e WHERE id = :id",
            s=new_start,
            e=new_start + timedelta(hours=2),
            id=moved,
        )
        await run_deliveries(owner_engine)
        rows = {r.subject_id: r for r in await _reminders(owner_engine, world.org_id)}
        assert {rows[i].status for i in (cancelled, held, moved)} == {"skipped"}
        assert all(rows[i].error == "no longer due" for i in (cancelled, held, moved))

        # The moved visit's new start is inside the window: one new reminder, once.
        for _ in range(3):
            await _scan(due + timedelta(hours=9, minutes=1))
        await run_deliveries(owner_engine, twice=True)
    final = [r for r in await _reminders(owner_engine, world.org_id) if r.status == "sent"]
    assert [(r.subject_id, r.send_key) for r in final] == [(moved, new_start.astimezone(UTC).isoformat())]
    received = await smtp_server.wait_for(1)
    assert len(received) == 1 and "18:00" in str(received[0].message["Subject"])
    assert pending not in {r.subject_id for r in await _reminders(owner_engine, world.org_id)}


async def test_reminders_stay_inside_their_organisation(owner_engine, smtp_server) -> None:
    first = await arrange_world(owner_engine, workers=1)
    second = await arrange_world(owner_engine, workers=1, timezone="America/Vancouver")
    await sql(owner_engine, "UPDATE client SET email = 'first@example.com' WHERE id = :id", id=first.client_id)
    await sql(owner_engine, "UPDATE client SET email = 'second@example.com' WHERE id = :id", id=second.client_id)
    ours = await _visit(owner_engine, first, datetime(2026, 3, 9, 9, 0, tzinfo=TORONTO))
    theirs = await _visit(owner_engine, second, datetime(2026, 3, 9, 9, 0, tzinfo=ZoneInfo("America/Vancouver")))
    async with job_runtime(**smtp_server.env()):
        # 13:00 UTC: 09:00 in Toronto (due), 06:00 in Vancouver (not yet).
        await _scan(datetime(2026, 3, 8, 13, 1, tzinfo=UTC))
        assert [r.subject_id for r in await _reminders(owner_engine, first.org_id)] == [ours]
        assert await _reminders(owner_engine, second.org_id) == []
        await _scan(datetime(2026, 3, 8, 16, 1, tzinfo=UTC))  # 09:01 in Vancouver
        assert [r.subject_id for r in await _reminders(owner_engine, second.org_id)] == [theirs]
        await run_deliveries(owner_engine)
    received = await smtp_server.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in received) == ["first@example.com", "second@example.com"]
    for row in [*await deliveries(owner_engine, first.org_id), *await deliveries(owner_engine, second.org_id)]:
        assert row.client_id in (first.client_id, second.client_id)
        assert (row.org_id, row.client_id) in ((first.org_id, first.client_id), (second.org_id, second.client_id))
