"""A booking answers the same JSON whether it was mapped from the ORM model after a write
(`BookingRead.from_model`) or from the list's columns on a read (`BookingRead.from_row`)."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.scheduling import bookings
from spotless.domain.scheduling.context import org_context
from spotless.domain.scheduling.models import Booking
from spotless.domain.scheduling.schemas import BookingRead
from tests.support.factories import AppSessions, api_world, next_weekday
from tests.support.identity import signup


async def test_from_row_and_from_model_answer_identical_json(
    client, owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=3)
    day = next_weekday(2)
    made = await client.post(
        "/v1/bookings",
        json=world.booking(day, 9, workers=world.worker_ids[:2], notes="Side door"),
        headers=owner.headers,
    )
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    # A cancelled booking: more of the optional fields are set.
    other = await client.post("/v1/bookings", json=world.booking(day, 13), headers=owner.headers)
    cancelled = await client.post(
        f"/v1/bookings/{other.json()['id']}/cancel", json={"reason": "client away"}, headers=owner.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    # And one nobody is on yet (no assignment row to aggregate).
    unstaffed = await client.post("/v1/bookings", json=world.booking(day, 16, workers=[]), headers=owner.headers)
    assert unstaffed.status_code == 201, unstaffed.text

    async with app_sessions.scoped(world.org_id) as s:
        ctx = await org_context(s, world.org_id)
        for bid in (booking_id, other.json()["id"], unstaffed.json()["id"]):
            model = await s.get_one(Booking, bid)
            workers = (await bookings.workers_of(s, [model.id]))[model.id]
            row = (await s.execute(select(*bookings.BOOKING_COLUMNS).where(Booking.id == model.id))).one()
            from_model = BookingRead.from_model(model, workers, ctx)
            from_row = BookingRead.from_row(row, ctx)
            assert from_row == from_model
            assert msgspec.json.encode(from_row) == msgspec.json.encode(from_model)

    # Through the API: the write's answer (from the model) is what the reads (rows) answer.
    one = await client.get(f"/v1/bookings/{booking_id}", headers=owner.headers)
    listed = await client.get(
        "/v1/bookings", params={"date_from": day.isoformat(), "date_to": day.isoformat()}, headers=owner.headers
    )
    assert one.json() == made.json()
    assert listed.json()["items"] == [made.json(), cancelled.json(), unstaffed.json()]
    assert unstaffed.json()["worker_ids"] == []
