"""Domain events on the jobs outbox, end to end on real PostgreSQL, Redis and a real worker:
the event -> subscriber map, rollback, Redis down at commit, a failing subscriber, redelivery,
and what wave 1's services emit."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.domain.system.events import Probed
from spotless.lib.events import SUBSCRIBERS, emit
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.dlq import count_dead_letters
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup

registry.import_jobs()

# Who listens to what. A change here is a change in how contexts depend on each other: update it
# on purpose (and the note), never by accident.
EXPECTED_MAP: dict[str, list[str]] = {
    "billing.DisputeClosed": ["webhooks.fan_out"],
    "billing.DisputeOpened": ["billing.notify_dispute_opened", "webhooks.fan_out"],
    "billing.InvoiceIssued": ["billing.auto_charge", "messaging.invoice_issued", "webhooks.fan_out"],
    "billing.InvoiceOverdue": ["billing.start_followup", "webhooks.fan_out"],
    "billing.InvoicePaid": ["billing.resolve_followup", "webhooks.fan_out"],
    "billing.InvoiceVoided": ["billing.resolve_followup", "webhooks.fan_out"],
    "billing.PaymentFailed": ["billing.start_followup", "webhooks.fan_out"],
    "billing.PaymentHoldReleased": ["scheduling.release_client_visits"],
    "billing.PaymentHoldRequested": ["scheduling.hold_client_visits"],
    "billing.PaymentRecorded": ["messaging.payment_receipt", "webhooks.fan_out"],
    "billing.RefundSucceeded": ["webhooks.fan_out"],
    "clients.ClientArchived": ["scheduling.close_client_work", "webhooks.fan_out"],
    "integrations.IntegrationDisconnected": ["integrations.gcal_forget_calendar"],
    "integrations.IntegrationNeedsReconnect": ["messaging.integration_needs_reconnect"],
    "scheduling.BookingAssignmentsChanged": ["integrations.gcal_push_visit"],
    "scheduling.BookingCancelled": [
        "integrations.gcal_push_visit",
        "messaging.booking_cancelled",
        "messaging.cleaner_job_cancelled",
        "system.count_booking",
        "webhooks.fan_out",
    ],
    "scheduling.BookingCompleted": ["billing.invoice_completed_visit", "system.count_booking", "webhooks.fan_out"],
    "scheduling.BookingConfirmed": ["messaging.booking_confirmed", "system.count_booking", "webhooks.fan_out"],
    "scheduling.BookingCreated": ["integrations.gcal_push_visit", "system.count_booking", "webhooks.fan_out"],
    "scheduling.BookingNoShow": ["system.count_booking", "webhooks.fan_out"],
    "scheduling.BookingRescheduled": [
        "integrations.gcal_push_visit",
        "messaging.booking_rescheduled",
        "messaging.cleaner_job_moved",
        "webhooks.fan_out",
    ],
    "scheduling.BookingStarted": ["webhooks.fan_out"],
    "scheduling.BookingTravelStarted": ["messaging.booking_on_my_way"],
    "scheduling.ClientVisitsHeld": [],
    "scheduling.ClientVisitsReleased": [],
    "scheduling.SeriesPaused": ["webhooks.fan_out"],
    "scheduling.SeriesResumed": ["webhooks.fan_out"],
    "system.Probed": ["system.probe_first", "system.probe_second"],
    "webhooks.EndpointDisabled": ["messaging.webhook_endpoint_disabled"],
}


def test_the_event_subscriber_map() -> None:
    found = registry.event_subscribers()
    width = max(map(len, found))
    print("\nevent -> subscribers")
    for event_name, subscribers in found.items():
        print(f"  {event_name:<{width}}  ->  {', '.join(subscribers) or '(nobody yet)'}")
    assert found == EXPECTED_MAP
    for subscribers in found.values():
        assert all(name in JOBS for name in subscribers)  # each subscriber is a declared job


@pytest.fixture
async def sessionmaker(settings: Settings):
    engine = create_engine(settings.database, application_name="test-events")
    yield session_factory(engine)
    await engine.dispose()


async def _records(redis: Redis, settings: Settings) -> list[str]:
    return [m.decode() for m in await redis.lrange(f"{settings.jobs.namespace}:records", 0, -1)]


async def _wait_for(redis: Redis, settings: Settings, *markers: str, timeout: float = 60) -> bool:
    # Eventual delivery, not speed: a loaded CI machine can take tens of seconds through a real worker.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(markers) <= set(await _records(redis, settings)):
            return True
        await asyncio.sleep(0.1)
    return False


async def _outbox(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(text("SELECT actor_name, args, sent_at FROM job_outbox ORDER BY id"))).all())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_one_emit_writes_one_outbox_row_per_subscriber_with_one_event_id(sessionmaker, owner_engine) -> None:
    async with sessionmaker() as session, session.begin():
        ids = emit(session, Probed(marker="rows"))
    rows = await _outbox(owner_engine)
    assert len(ids) == len(rows) == 2
    assert [r.actor_name for r in rows] == ["system.probe_first", "system.probe_second"]
    names, event_ids, payloads = zip(*(r.args for r in rows), strict=True)
    assert set(names) == {"system.Probed"}
    assert len(set(event_ids)) == 1  # the same event: subscribers dedupe on its id
    assert payloads[0] == {"marker": "rows", "failing": []}


async def test_an_event_emitted_in_a_rolled_back_transaction_reaches_nobody(
    settings, sessionmaker, redis, worker_process, owner_engine
) -> None:
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        with pytest.raises(RuntimeError):
            async with sessionmaker() as session, session.begin():
                emit(session, Probed(marker="rolled-back"))
                raise RuntimeError("the business rule failed after the event")
        async with sessionmaker() as session, session.begin():
            with pytest.raises(RuntimeError):
                async with session.begin_nested():
                    emit(session, Probed(marker="savepoint-rolled-back"))
                    raise RuntimeError("one occurrence conflicted")
            emit(session, Probed(marker="sentinel"))
        await relay.drain()
        # Emitted later, and heard by both: the rolled-back ones would have been heard by now.
        assert await _wait_for(redis, settings, "system.probe_first:sentinel", "system.probe_second:sentinel"), (
            worker_process.log()
        )
        records = await _records(redis, settings)
        assert not [r for r in records if "rolled-back" in r]
        assert len(await _outbox(owner_engine)) == 2
    finally:
        install_relay(None)
        broker.close()


async def test_a_committed_event_reaches_every_subscriber_once_even_with_redis_down_at_commit(
    settings, sessionmaker, redis, worker_process, owner_engine
) -> None:
    dead_broker = build_broker(make_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"))
    relay = OutboxRelay(sessionmaker, dead_broker)
    install_relay(relay)
    try:
        async with sessionmaker() as session, session.begin():
            emit(session, Probed(marker="outage"))
        await relay.drain()
    finally:
        install_relay(None)
        dead_broker.close()
    rows = await _outbox(owner_engine)
    assert [r.sent_at for r in rows] == [None, None]  # committed, not yet handed over
    assert not [r for r in await _records(redis, settings) if "outage" in r]

    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE job_outbox SET available_at = now()"))  # skip the retry backoff
    live = build_broker(settings)
    try:
        sweep = OutboxRelay(sessionmaker, live)  # what the scheduler's sweep runs every second
        assert await sweep.relay() == 2
        assert await sweep.relay() == 0  # handed over once
    finally:
        live.close()
    assert await _wait_for(redis, settings, "system.probe_first:outage", "system.probe_second:outage"), (
        worker_process.log()
    )
    await asyncio.sleep(0.5)
    records = await _records(redis, settings)
    assert records.count("system.probe_first:outage") == records.count("system.probe_second:outage") == 1


async def test_a_failing_subscriber_dead_letters_alone(settings, sessionmaker, redis, worker_process) -> None:
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        async with sessionmaker() as session, session.begin():
            emit(session, Probed(marker="one-fails", failing=frozenset({"system.probe_second"})))
        await relay.drain()
        assert await _wait_for(redis, settings, "system.probe_first:one-fails"), worker_process.log()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (await count_dead_letters(redis, settings.jobs.namespace)).get("default") == 1:
                break
            await asyncio.sleep(0.1)
        assert (await count_dead_letters(redis, settings.jobs.namespace)).get("default") == 1
        dead = await redis.hvals(f"{settings.jobs.namespace}:default.XQ.msgs")
        assert [json.loads(m)["actor_name"] for m in dead] == ["system.probe_second"]
        assert "system.probe_second:one-fails" not in await _records(redis, settings)

        # The failed one holds nothing back: the next event reaches both.
        async with sessionmaker() as session, session.begin():
            emit(session, Probed(marker="next"))
        await relay.drain()
        assert await _wait_for(redis, settings, "system.probe_first:next", "system.probe_second:next"), (
            worker_process.log()
        )
    finally:
        install_relay(None)
        broker.close()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Any]:
    from spotless.lib.jobs.runtime import build_runtime, set_runtime

    rt = build_runtime(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)


async def test_a_redelivered_event_takes_effect_once(settings, redis, runtime) -> None:
    from spotless.lib.metrics import BOOKINGS

    try:
        handle = JOBS["system.probe_first"].fn
        event_id = str(uuid.uuid4())
        for _ in range(2):  # a worker lost after the effect: the broker delivers it again
            await handle("system.Probed", event_id, {"marker": "twice", "failing": []})
        assert (await _records(redis, settings)).count("system.probe_first:twice") == 1

        count = JOBS["system.count_booking"].fn
        before = BOOKINGS.labels(action="completed")._value.get()  # type: ignore[attr-defined]
        payload = {
            "org_id": str(uuid.uuid4()),
            "booking_id": str(uuid.uuid4()),
            "completed_at": datetime.now(UTC).isoformat(),
        }
        for _ in range(2):
            await count("scheduling.BookingCompleted", event_id, payload)
        assert BOOKINGS.labels(action="completed")._value.get() == before + 1  # type: ignore[attr-defined]
    finally:
        await runtime.close()


# --- what wave 1 emits -----------------------------------------------------------------------


@pytest.fixture
def listening() -> Iterator[None]:
    """Subscribe `system.noop` to the events nobody hears yet, to see what the services emit."""
    added = ["scheduling.BookingRescheduled", "scheduling.BookingStarted"]
    for name in added:
        SUBSCRIBERS.setdefault(name, []).append("system.noop")
    yield
    for name in added:
        SUBSCRIBERS[name].remove("system.noop")


async def _emitted(owner_engine: AsyncEngine) -> list[tuple[str, dict[str, Any]]]:
    """Each emitted event once (an event with several subscribers has a row for each)."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for r in await _outbox(owner_engine):
        seen.setdefault(r.args[1], (r.args[0], r.args[2]))
    return list(seen.values())


async def test_booking_and_client_changes_emit_their_events(client, owner_engine, listening) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(3, weeks_ahead=3)
    booking = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    url = f"/v1/bookings/{booking['id']}"
    assert (
        await client.post(f"{url}/reschedule", json={"starts_at": world.at(day, 13)}, headers=owner.headers)
    ).is_success
    assert (await client.post(f"{url}/confirm", headers=owner.headers)).is_success
    assert (await client.post(f"{url}/complete", headers=owner.headers)).is_success
    other = (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).json()
    cancelled = await client.post(f"/v1/bookings/{other['id']}/cancel", json={"reason": "away"}, headers=owner.headers)
    assert cancelled.is_success
    assert (await client.delete(f"/v1/clients/{world.client_id}", headers=owner.headers)).is_success
    assert (await client.delete(f"/v1/clients/{world.client_id}", headers=owner.headers)).is_success  # idempotent

    emitted = await _emitted(owner_engine)
    assert [name for name, _ in emitted] == [
        "scheduling.BookingCreated",
        "scheduling.BookingRescheduled",
        "scheduling.BookingConfirmed",
        "scheduling.BookingCompleted",
        "scheduling.BookingCreated",
        "scheduling.BookingCancelled",
        "clients.ClientArchived",  # once: archiving an archived client changes nothing
    ]
    by_name = dict(emitted)
    assert by_name["scheduling.BookingRescheduled"]["booking_id"] == booking["id"]
    assert (
        by_name["scheduling.BookingRescheduled"]["previous_starts_at"]
        != by_name["scheduling.BookingRescheduled"]["starts_at"]
    )
    assert by_name["scheduling.BookingCancelled"] == {
        "org_id": str(owner.org_id),
        "booking_id": other["id"],
        "series_id": None,
        "reason": "away",
    }
    assert by_name["clients.ClientArchived"]["client_id"] == str(world.client_id)


async def test_a_refused_request_emits_nothing(client, owner_engine) -> None:
    owner = await signup(client)
    world = await api_world(client, owner)
    day = next_weekday(3, weeks_ahead=3)
    assert (await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)).status_code == 201
    conflict = await client.post("/v1/bookings", json=world.booking(day, 9), headers=owner.headers)
    assert conflict.status_code == 409
    assert [name for name, _ in await _emitted(owner_engine)] == ["scheduling.BookingCreated"]
