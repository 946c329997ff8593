"""Booking messages end to end over SMTP (aiosmtpd on loopback): the API confirms a booking ->
scheduling's event -> our subscriber requests the message -> the delivery job sends it. Each
redelivered (the event, then the delivery job): one confirmation per booking."""

from __future__ import annotations

from uuid import UUID

from tests.integration.messaging.notifications.conftest import run_deliveries, run_subscriber, sql
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup
from tests.support.messaging import deliveries, job_runtime


async def _confirmed_booking(client, owner_engine) -> tuple[object, object, str]:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    await sql(owner_engine, "UPDATE client SET email = 'ada@example.com' WHERE id = :id", id=world.client_id)
    day = next_weekday(2, weeks_ahead=2)
    made = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    confirmed = await client.post(f"/v1/bookings/{booking_id}/confirm", headers=owner.headers)
    assert confirmed.status_code in (200, 201), confirmed.text
    return owner, world, booking_id


async def test_a_confirmation_is_sent_once_per_booking(client, owner_engine, smtp_server) -> None:
    owner, world, booking_id = await _confirmed_booking(client, owner_engine)
    again = await client.post(f"/v1/bookings/{booking_id}/confirm", headers=owner.headers)  # type: ignore[attr-defined]
    assert again.status_code >= 400  # confirmed already: no second event

    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, "messaging.booking_confirmed") == 1  # heard twice
        assert await run_deliveries(owner_engine, twice=True) == 2  # email and sms rows, each twice
        assert await run_deliveries(owner_engine) == 0

    received = await smtp_server.wait_for(1)
    assert len(received) == 1
    [mail] = received
    assert mail.rcpt_tos == ["ada@example.com"]
    assert "is confirmed" in str(mail.message["Subject"])
    assert "1 Main St" in mail.body and "Cleaner 0" in mail.body and "09:00" in mail.body
    rows = {r.channel: r for r in await deliveries(owner_engine, world.org_id)}  # type: ignore[attr-defined]
    assert rows["email"].status == "sent" and rows["email"].kind == "booking.confirmed"
    assert rows["email"].subject_id == UUID(booking_id) and rows["email"].send_key == "confirmed"
    assert rows["sms"].status == "skipped"  # the client's preference is email


async def test_a_booking_cancelled_before_its_confirmation_went_out_is_not_confirmed(
    client, owner_engine, smtp_server
) -> None:
    owner, world, booking_id = await _confirmed_booking(client, owner_engine)
    cancelled = await client.post(
        f"/v1/bookings/{booking_id}/cancel",
        json={"reason": "client asked"},
        headers=owner.headers,  # type: ignore[attr-defined]
    )
    assert cancelled.status_code in (200, 201), cancelled.text
    async with job_runtime(**smtp_server.env()):
        await run_subscriber(owner_engine, "messaging.booking_confirmed")
        await run_subscriber(owner_engine, "messaging.booking_cancelled")
        await run_deliveries(owner_engine)
    received = await smtp_server.wait_for(1)
    assert [str(m.message["Subject"]) for m in received] == [received[0].message["Subject"]]
    assert "cancelled" in str(received[0].message["Subject"])
    by_kind = {(r.kind, r.channel): r for r in await deliveries(owner_engine, world.org_id)}  # type: ignore[attr-defined]
    assert by_kind[("booking.confirmed", "email")].status == "skipped"
    assert by_kind[("booking.confirmed", "email")].error == "no longer due"
    assert by_kind[("booking.cancelled", "email")].status == "sent"


async def test_a_move_is_told_once_per_new_start(client, owner_engine, smtp_server) -> None:
    owner, world, booking_id = await _confirmed_booking(client, owner_engine)
    day = next_weekday(3, weeks_ahead=2)
    moved = await client.post(
        f"/v1/bookings/{booking_id}/reschedule",
        json={"starts_at": world.at(day, 13, 0)},  # type: ignore[attr-defined]
        headers=owner.headers,  # type: ignore[attr-defined]
    )
    assert moved.status_code == 200, moved.text
    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, "messaging.booking_rescheduled") == 1  # heard twice
        await run_deliveries(owner_engine, twice=True)
    [mail] = [m for m in await smtp_server.wait_for(1) if "moved" in str(m.message["Subject"])]
    assert "13:00" in str(mail.message["Subject"]) and "09:00" in mail.body
