"""Archiving a client closes their open work, through the `clients.ClientArchived` event: nobody is
sent to a former client's door, and visits already worked stay as history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup

registry.import_jobs()


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


async def _deliver(owner_engine: AsyncEngine, subscriber: str) -> int:
    """Run the subscriber on every outbox row addressed to it, as a worker would (twice: a
    redelivery must change nothing)."""
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = :n"), {"n": subscriber})).all()
    for _ in range(2):
        for row in rows:
            await JOBS[subscriber].fn(*row.args)
    return len(rows)


async def _booking(client: Any, owner: Any, booking_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/bookings/{booking_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_archiving_a_client_cancels_their_open_visits_and_ends_their_series(
    client, owner_engine, runtime
) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(2, weeks_ahead=2)
    one_off = (await client.post("/v1/bookings", json=world.booking(day, 13), headers=owner.headers)).json()
    series = await client.post("/v1/series", json=world.series(day + timedelta(days=1), count=3), headers=owner.headers)
    assert series.status_code == 201, series.text
    series_id, occurrence_ids = series.json()["series"]["id"], series.json()["booking_ids"]
    assert occurrence_ids

    assert (await client.delete(f"/v1/clients/{world.client_id}", headers=owner.headers)).status_code in (200, 204)
    assert await _deliver(owner_engine, "scheduling.close_client_work") == 1

    for booking_id in [one_off["id"], *occurrence_ids]:
        booking = await _booking(client, owner, booking_id)
        assert booking["status"] == "cancelled"
        assert booking["cancel_reason"] == "client archived"
    assert (await client.get(f"/v1/series/{series_id}", headers=owner.headers)).json()["status"] in (
        "cancelled",
        "ended",
    )
    async with owner_engine.connect() as conn:
        cancelled_events = await conn.scalar(
            text(
                "SELECT count(*) FROM job_outbox WHERE actor_name = 'system.count_booking'"
                " AND args->>0 = 'scheduling.BookingCancelled'"
            )
        )
    assert cancelled_events == 1 + len(occurrence_ids)  # each cancellation announced once, redelivery or not


async def test_a_client_restored_before_the_event_is_handled_keeps_their_visits(client, owner_engine, runtime) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(2, weeks_ahead=2)
    booking = (await client.post("/v1/bookings", json=world.booking(day, 10), headers=owner.headers)).json()
    assert (await client.delete(f"/v1/clients/{world.client_id}", headers=owner.headers)).is_success
    restored = await client.patch(f"/v1/clients/{world.client_id}", json={"archived": False}, headers=owner.headers)
    assert restored.status_code == 200, restored.text
    await _deliver(owner_engine, "scheduling.close_client_work")
    assert (await _booking(client, owner, booking["id"]))["status"] == "pending"
