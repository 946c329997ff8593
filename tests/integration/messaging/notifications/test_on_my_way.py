"""On my way: an assigned cleaner presses "travel" in the field app -> BookingTravelStarted ->
the client's message (a text when they agreed to texts, else email), once per visit; a second
press tells nobody; a cleaner of another organisation, or one not on the job, is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.messaging.notifications.conftest import run_deliveries, run_subscriber, sql
from tests.support.factories import api_worker, api_world
from tests.support.fake_twilio import FakeTwilio
from tests.support.identity import add_member, signup
from tests.support.messaging import deliveries, job_runtime

SUBSCRIBER = "messaging.booking_on_my_way"
PHONE = "+14165550123"


async def _job(client, owner_engine, *, texts: bool):  # type: ignore[no-untyped-def]
    owner = await signup(client)
    world = await api_world(client, owner, workers=1, hours=("00:00", "23:59"))
    cleaner = await add_member(client, owner, "worker")
    mine = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id, hours=("00:00", "23:59"))
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=1)
    body = world.booking(start.astimezone(world.tz).date(), 0, workers=[mine], override={"reason": "any hour"})
    body["starts_at"] = start.isoformat()
    made = await client.post("/v1/bookings", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    assert (await client.post(f"/v1/bookings/{booking_id}/confirm", headers=owner.headers)).status_code == 200
    await sql(
        owner_engine,
        "UPDATE client SET email = 'ada@example.com', phone = :p WHERE id = :id",
        p=PHONE,
        id=world.client_id,
    )
    if texts:
        consent = await client.put(
            f"/v1/clients/{world.client_id}/sms-consent", json={"consented": True}, headers=owner.headers
        )
        assert consent.status_code == 200, consent.text
        assert {p["kind"]: p["channel"] for p in consent.json()["preferences"]}["booking.on_my_way"] == "sms"
    # Texts at any hour here (quiet hours are tested with every text in test_sms).
    quiet = await client.put(
        "/v1/messaging/settings", json={"quiet_start": None, "quiet_end": None}, headers=owner.headers
    )
    assert quiet.status_code == 200, quiet.text
    return owner, world, cleaner, booking_id


async def test_a_client_who_agreed_to_texts_gets_one_on_my_way_text(
    client, owner_engine, fake_twilio: FakeTwilio
) -> None:
    owner, world, cleaner, booking_id = await _job(client, owner_engine, texts=True)
    url = f"/v1/worker/jobs/{booking_id}/travel"
    first = await client.post(url, headers=cleaner.headers)
    assert first.status_code == 201, first.text
    assert first.json()["job"]["travel_started_at"] is not None
    again = await client.post(url, headers=cleaner.headers)
    assert again.status_code == 200
    assert again.json()["job"]["travel_started_at"] == first.json()["job"]["travel_started_at"]

    async with job_runtime(**fake_twilio.env()):
        assert await run_subscriber(owner_engine, SUBSCRIBER) == 1  # one event (heard twice), none for the repeat
        await run_deliveries(owner_engine, twice=True)
    [text] = fake_twilio.messages
    assert text.to == PHONE and "Sam is on the way" in text.body
    rows = {(r.kind, r.channel): r for r in await deliveries(owner_engine, world.org_id)}
    assert rows[("booking.on_my_way", "sms")].status == "sent"
    assert rows[("booking.on_my_way", "email")].status == "skipped"  # one message, not both
    log = (await client.get(f"/v1/bookings/{booking_id}/messages", headers=owner.headers)).json()
    assert [(e["kind"], e["channel"], e["status"]) for e in log["items"] if e["status"] == "sent"] == [
        ("booking.on_my_way", "sms", "sent")
    ]


async def test_without_texts_the_client_gets_one_email(client, owner_engine, smtp_server) -> None:
    _owner, world, cleaner, booking_id = await _job(client, owner_engine, texts=False)
    assert (await client.post(f"/v1/worker/jobs/{booking_id}/travel", headers=cleaner.headers)).status_code == 201
    assert (await client.post(f"/v1/worker/jobs/{booking_id}/travel", headers=cleaner.headers)).status_code == 200
    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, SUBSCRIBER) == 1
        await run_deliveries(owner_engine, twice=True)
        assert await run_subscriber(owner_engine, SUBSCRIBER) == 0
    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["ada@example.com"] and "Sam is on the way" in str(mail.message["Subject"])
    assert len(smtp_server.messages) == 1
    statuses = {r.channel: r.status for r in await deliveries(owner_engine, world.org_id)}
    assert statuses == {"email": "sent", "sms": "skipped"}


async def test_a_moved_visit_is_a_new_trip_told_once_more(client, owner_engine, smtp_server) -> None:
    owner, _world, cleaner, booking_id = await _job(client, owner_engine, texts=False)
    url = f"/v1/worker/jobs/{booking_id}/travel"
    async with job_runtime(**smtp_server.env()):
        assert (await client.post(url, headers=cleaner.headers)).status_code == 201
        assert await run_subscriber(owner_engine, SUBSCRIBER) == 1
        await run_deliveries(owner_engine)
        await smtp_server.wait_for(1)
        later = (datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=3)).isoformat()
        moved = await client.post(
            f"/v1/bookings/{booking_id}/reschedule",
            json={"starts_at": later, "override": {"reason": "any hour"}},
            headers=owner.headers,
        )
        assert moved.status_code == 200, moved.text
        again = await client.post(url, headers=cleaner.headers)
        assert again.status_code == 201, again.text  # a new trip, not the earlier one repeated
        assert await run_subscriber(owner_engine, SUBSCRIBER) == 1
        await run_deliveries(owner_engine, twice=True)
        await smtp_server.wait_for(2)
    on_the_way = [m for m in smtp_server.messages if "on the way" in str(m.message["Subject"])]
    assert len(on_the_way) == 2


async def test_only_an_assigned_cleaner_of_the_organisation_may_set_off(client, owner_engine) -> None:
    owner, _world, _cleaner, booking_id = await _job(client, owner_engine, texts=False)
    url = f"/v1/worker/jobs/{booking_id}/travel"
    # A cleaner of the same organisation, not on this job.
    colleague = await add_member(client, owner, "worker")
    await api_worker(client, owner, name="Kim", user_id=colleague.user_id, hours=("00:00", "23:59"))
    not_assigned = await client.post(url, headers=colleague.headers)
    assert not_assigned.status_code == 404 and not_assigned.json()["type"] == "/problems/not-found"
    # A cleaner of another organisation: the booking does not exist for them.
    other_owner = await signup(client)
    stranger = await add_member(client, other_owner, "worker")
    await api_worker(client, other_owner, name="Lee", user_id=stranger.user_id, hours=("00:00", "23:59"))
    foreign = await client.post(url, headers=stranger.headers)
    assert foreign.status_code == 404 and foreign.json()["detail"] == not_assigned.json()["detail"]
    # The office is not a cleaner on the job.
    no_profile = await client.post(url, headers=owner.headers)
    assert no_profile.status_code == 403 and no_profile.json()["type"] == "/problems/no-worker-profile"
    assert await run_subscriber(owner_engine, SUBSCRIBER) == 0  # nothing announced
    rows = await sql(owner_engine, "SELECT travel_started_at FROM booking WHERE id = :id", id=booking_id)
    assert rows[0].travel_started_at is None


async def test_a_cancelled_job_cannot_be_set_off_for(client, owner_engine) -> None:
    owner, _world, cleaner, booking_id = await _job(client, owner_engine, texts=False)
    cancelled = await client.post(f"/v1/bookings/{booking_id}/cancel", json={"reason": "ill"}, headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    refused = await client.post(f"/v1/worker/jobs/{booking_id}/travel", headers=cleaner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/illegal-transition"
    assert await run_subscriber(owner_engine, SUBSCRIBER) == 0
