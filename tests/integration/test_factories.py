"""The factories build rows the database accepts, with the links a test expects, and the app role
sees them in their organisation (they are arranged below the API, never around its rules)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from spotless.domain.scheduling.models import BookingAssignment, BookingSeriesWorker
from spotless.domain.workforce.models import TeamMember, WorkingHours
from tests.support.factories import (
    AppSessions,
    arrange,
    new_addon,
    new_address,
    new_booking,
    new_client,
    new_heartbeat,
    new_idempotency_key,
    new_member,
    new_org,
    new_scheduled_run,
    new_scheduling_settings,
    new_series,
    new_service,
    new_team,
    new_time_off,
    new_worker,
)


async def test_every_factory_makes_a_row_the_schema_accepts(owner_engine, app_sessions: AppSessions) -> None:
    async with arrange(owner_engine) as db:
        org = await new_org(db, timezone="Europe/Paris")
        owner = await new_member(db, org.id, "owner")
        client = await new_client(db, org.id, name="Bea")
        address = await new_address(db, org.id, client.id)
        service = await new_service(db, org.id)
        await new_addon(db, org.id, service.id)
        await new_addon(db, org.id)
        first = await new_worker(db, org.id, weekdays=(0, 1))
        second = await new_worker(db, org.id, name="Other", hours=(time(9), time(12)))
        await new_time_off(db, org.id, first.id, datetime.now(UTC), datetime.now(UTC) + timedelta(days=1))
        team = await new_team(db, org.id, [first.id, second.id])
        booking = await new_booking(db, org.id, client.id, address.id, service.id, worker_ids=[first.id])
        series = await new_series(db, org.id, client.id, address.id, service.id, worker_ids=[second.id, first.id])
        await new_scheduling_settings(db, org.id, travel_buffer_minutes=15)
        settings = await new_scheduling_settings(db, org.id, travel_buffer_minutes=30)
        await new_idempotency_key(db, org.id, owner.user_id)
        await new_heartbeat(db)
        await new_scheduled_run(db, "test.job", datetime.now(UTC), status="started")

    assert org.timezone == "Europe/Paris" and client.name == "Bea" and owner.role == "owner"
    assert booking.ends_at - booking.starts_at == timedelta(minutes=120) and booking.status == "pending"
    assert settings.travel_buffer_minutes == 30  # one settings row per organisation, changed in place
    async with app_sessions.scoped(org.id) as session:

        async def count(what, *where) -> int:
            return (await session.execute(select(func.count()).select_from(what).where(*where))).scalar_one()

        assert await count(WorkingHours, WorkingHours.worker_id == first.id) == 2
        assert await count(WorkingHours, WorkingHours.worker_id == second.id) == 7
        assert await count(TeamMember, TeamMember.team_id == team.id) == 2
        assert await count(BookingAssignment, BookingAssignment.booking_id == booking.id) == 1
        cleaners = await session.execute(
            select(BookingSeriesWorker.worker_id)
            .where(BookingSeriesWorker.series_id == series.id)
            .order_by(BookingSeriesWorker.position)
        )
        assert list(cleaners.scalars()) == [second.id, first.id]
