"""Outgoing webhooks end to end: a domain event committed -> one message per subscribed endpoint
-> a signed POST to a real HTTP receiver on loopback, reached under a name that the test's
resolver maps to it (so the connection provably goes to the checked address, keeping the name).
Retries, Retry-After, 410, redirects, timeouts, replays, rotation, hostile addresses and
organisations apart. The clock is moved by editing `next_attempt_at`, never by waiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.clients.events import ClientArchived
from spotless.domain.webhooks.actors import queue_due
from spotless.lib.events import SUBSCRIBERS, emit
from tests.support.identity import Member, add_member, signup
from tests.support.webhook_receiver import Answer, Receiver

pytestmark = pytest.mark.timeout(120)

NAME = "hooks.integrator.example"
JOBS = ("webhooks.fan_out", "webhooks.deliver")


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(
        item.split(",", 1)[0] == "v1" and hmac.compare_digest(item.split(",", 1)[1], expected)
        for item in headers["webhook-signature"].split(" ")
    )


async def endpoint(client: Any, member: Member, url: str, types: list[str] | None = None) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks/endpoints",
        json={"url": url, "event_types": types or ["client.archived"], "description": "integrator"},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def archive_client(runtime: Any, org_id: UUID, client_id: UUID | None = None) -> UUID:
    """ClientArchived emitted in a committed transaction of the organisation (as the clients
    context does)."""
    client_id = client_id or uuid.uuid4()
    async with runtime.session(org_id) as session:
        emit(session, ClientArchived(org_id=org_id, client_id=client_id, archived_at=datetime.now(UTC)))
    return client_id


async def messages(owner_engine: AsyncEngine, endpoint_id: str) -> list[Any]:
    async with owner_engine.connect() as conn:
        return list(
            await conn.execute(
                text("SELECT * FROM webhook_messages WHERE endpoint_id = :e ORDER BY created_at"), {"e": endpoint_id}
            )
        )


async def endpoint_row(owner_engine: AsyncEngine, endpoint_id: str) -> Any:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM webhook_endpoints WHERE id = :e"), {"e": endpoint_id})).one()


async def due_now(owner_engine: AsyncEngine, message_id: Any) -> None:
    """The wait is over: the retry sweep will find it."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_messages SET next_attempt_at = now() - interval '1 second' WHERE id = :m"),
            {"m": message_id},
        )


@pytest.fixture
async def integrator(client: Any, names: Any, receiver: Receiver) -> tuple[Member, dict[str, Any]]:
    names.table[NAME] = ["127.0.0.1"]
    owner = await signup(client, name="Integrated Cleaning")
    return owner, await endpoint(client, owner, receiver.url(host=NAME))


async def test_an_event_is_delivered_signed_to_the_checked_address(
    client, runtime, jobs, receiver: Receiver, names, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    assert created["secret"].startswith("whsec_")
    # Through the API: archiving a client is the clients context's event.
    made = await client.post("/v1/clients", json={"name": "Jane Doe"}, headers=owner.headers)
    client_id = made.json()["id"]
    assert (await client.delete(f"/v1/clients/{client_id}", headers=owner.headers)).status_code == 204
    await jobs.run(*JOBS)

    assert len(receiver.received) == 1
    got = receiver.received[0]
    # The name was resolved by our resolver, the connection went to its address, and the
    # receiver was still asked for the name.
    assert NAME in names.lookups and got.headers["host"] == f"{NAME}:{receiver.port}"
    assert got.headers["webhook-id"].startswith("msg_")
    assert abs(int(got.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert got.headers["webhook-signature"].startswith("v1,")
    assert verify(created["secret"], got.headers, got.body)
    body = json.loads(got.body)
    assert body["type"] == "client.archived" and body["data"]["client_id"] == client_id
    assert "org_id" not in body["data"] and set(body) == {"type", "timestamp", "data"}

    # The delivery log, and the secret never shown again.
    listed = await client.get(f"/v1/webhooks/endpoints/{created['id']}/messages", headers=owner.headers)
    [message] = listed.json()["items"]
    assert message["status"] == "delivered" and message["webhook_id"] == got.headers["webhook-id"]
    attempts = (await client.get(f"/v1/webhooks/messages/{message['id']}/attempts", headers=owner.headers)).json()
    assert [(a["attempt"], a["status_code"], a["response_body"]) for a in attempts] == [(1, 200, "ok")]
    assert attempts[0]["latency_ms"] >= 0
    shown = (await client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=owner.headers)).json()
    assert "secret" not in shown
    # At rest the secret is sealed: not in any column of the database in plain form.
    async with owner_engine.connect() as conn:
        sealed = (await conn.execute(text("SELECT sealed FROM webhook_secrets"))).scalars().all()
        dumped = (await conn.execute(text("SELECT row_to_json(m)::text FROM webhook_messages m"))).scalars().all()
        outbox = (await conn.execute(text("SELECT args::text FROM job_outbox"))).scalars().all()
    assert sealed and all(created["secret"].encode() not in bytes(s) for s in sealed)
    assert all(created["secret"] not in d for d in [*dumped, *outbox])

    # A redelivered event makes no second message.
    event_row = await _fan_out_row(owner_engine)
    await jobs.run(*JOBS)
    from spotless.lib.jobs import JOBS as ALL

    await ALL["webhooks.fan_out"].fn(*event_row.args)
    assert len(await messages(owner_engine, created["id"])) == 1


async def _fan_out_row(owner_engine: AsyncEngine) -> Any:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'webhooks.fan_out' LIMIT 1"))
        ).one()


async def test_retries_keep_the_webhook_id_and_honour_retry_after(
    runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    receiver.script(
        Answer(503, "down"),
        Answer(429, "slow down", {"Retry-After": "120"}),
        Answer(502, "bad gateway", {"Retry-After": "30"}),
        Answer(200, "ok"),
    )
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    [message] = await messages(owner_engine, created["id"])
    # After a plain failure: the first step of the schedule (5 s, jittered).
    wait = (message.next_attempt_at - message.updated_at).total_seconds()
    assert message.status == "pending" and 4 <= wait <= 6.5

    expected_waits = [120, 30]
    for expected in [*expected_waits, None]:
        await due_now(owner_engine, message.id)
        assert await queue_due() == 1
        await jobs.run(*JOBS)
        [message] = await messages(owner_engine, created["id"])
        if expected is not None:
            wait = (message.next_attempt_at - datetime.now(UTC)).total_seconds()
            assert expected - 5 <= wait <= expected, (expected, wait)
    assert message.status == "delivered" and message.attempts == 4
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1
    assert all(verify(created["secret"], r.headers, r.body) for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    # Nothing more is due: the sweep queues nothing.
    assert await queue_due() == 0


async def test_gone_disables_the_endpoint_and_announces_it(
    runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine, monkeypatch
) -> None:
    owner, created = integrator
    # Nobody subscribes to EndpointDisabled in this branch yet (messaging will): listen in with
    # a declared job so the emitted event shows in the outbox.
    monkeypatch.setitem(SUBSCRIBERS, "webhooks.EndpointDisabled", ["system.probe_first"])
    receiver.script(Answer(410, "gone"))
    await archive_client(runtime, owner.org_id)
    await archive_client(runtime, owner.org_id)
    await jobs.run("webhooks.fan_out")
    first, second = await messages(owner_engine, created["id"])
    await jobs.run("webhooks.deliver")
    row = await endpoint_row(owner_engine, created["id"])
    assert (row.enabled, row.disabled_reason) == (False, "gone")
    states = {m.id: m.status for m in await messages(owner_engine, created["id"])}
    assert states == {first.id: "failed", second.id: "failed"}
    assert len(receiver.received) == 1  # the second message was not sent to a gone endpoint
    async with owner_engine.connect() as conn:
        announced = (
            await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'system.probe_first'"))
        ).one()
    assert announced.args[0] == "webhooks.EndpointDisabled"
    assert announced.args[2]["endpoint_id"] == created["id"] and announced.args[2]["reason"] == "gone"
    # New events no longer make messages for it.
    await archive_client(runtime, owner.org_id)
    await jobs.run("webhooks.fan_out")
    assert len(await messages(owner_engine, created["id"])) == 2


async def test_an_endpoint_failing_for_days_is_disabled(
    runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine, monkeypatch
) -> None:
    owner, created = integrator
    monkeypatch.setitem(SUBSCRIBERS, "webhooks.EndpointDisabled", ["system.probe_first"])
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_endpoints SET failing_since = now() - interval '121 hours' WHERE id = :e"),
            {"e": created["id"]},
        )
    receiver.script(Answer(500, "still broken"))
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    row = await endpoint_row(owner_engine, created["id"])
    assert (row.enabled, row.disabled_reason) == (False, "failing")
    async with owner_engine.connect() as conn:
        reasons = (
            (
                await conn.execute(
                    text("SELECT args->2->>'reason' FROM job_outbox WHERE actor_name = 'system.probe_first'")
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["failing"]


async def test_redirects_are_not_followed(
    client, runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    receiver.script(Answer(302, "", {"Location": receiver.url("/elsewhere")}))
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    assert [r.path for r in receiver.received] == ["/hook"]
    [message] = await messages(owner_engine, created["id"])
    assert message.status == "pending" and message.last_status_code == 302
    assert "not followed" in message.last_error


async def test_a_slow_receiver_times_out_and_long_answers_are_truncated_in_the_log(
    client, runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    receiver.script(Answer(500, "x" * 10_000), Answer(200, "ok", delay=3.0))
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    [message] = await messages(owner_engine, created["id"])
    await due_now(owner_engine, message.id)
    await queue_due()
    started = asyncio.get_running_loop().time()
    await jobs.run(*JOBS)
    assert asyncio.get_running_loop().time() - started < 2.9  # the 2 s budget, not the receiver's 3 s
    attempts = (await client.get(f"/v1/webhooks/messages/{message.id}/attempts", headers=owner.headers)).json()
    newest, oldest = attempts
    assert oldest["status_code"] == 500 and len(oldest["response_body"]) == 2_048
    assert newest["status_code"] is None and "timed out" in newest["error"]


async def test_replay_of_one_message_and_of_a_window(
    client, runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    receiver.script(Answer(200), Answer(410))
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    [message] = await messages(owner_engine, created["id"])
    assert message.status == "delivered"
    replayed = await client.post(f"/v1/webhooks/messages/{message.id}/replay", headers=owner.headers)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    await jobs.run(*JOBS)
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    assert receiver.received[0].body == receiver.received[1].body
    # The 410 disabled it: replays wait until it is enabled again.
    assert (await client.post(f"/v1/webhooks/messages/{message.id}/replay", headers=owner.headers)).status_code == 409
    patched = await client.patch(
        f"/v1/webhooks/endpoints/{created['id']}", json={"enabled": True}, headers=owner.headers
    )
    assert patched.json()["enabled"] is True and patched.json()["disabled_reason"] is None
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(minutes=1)).isoformat()}
    answer = await client.post(f"/v1/webhooks/endpoints/{created['id']}/replay", json=window, headers=owner.headers)
    assert answer.status_code == 202 and answer.json() == {"status": "queued", "messages": 1}
    await jobs.run(*JOBS)
    assert len(receiver.received) == 3
    [message] = await messages(owner_engine, created["id"])
    assert message.status == "delivered"
    # A window too wide is a 400 saying what to narrow.
    wide = {"since": (now - timedelta(days=40)).isoformat(), "until": now.isoformat()}
    refused = await client.post(f"/v1/webhooks/endpoints/{created['id']}/replay", json=wide, headers=owner.headers)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "until"


async def test_rotation_signs_with_both_secrets_during_the_grace(
    client, runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    rotated = await client.post(f"/v1/webhooks/endpoints/{created['id']}/rotate-secret", headers=owner.headers)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"] and rotated.json()["previous_expires_at"] is not None
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify(created["secret"], got.headers, got.body) and verify(new_secret, got.headers, got.body)
    # The grace is over: only the new secret signs.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_secrets SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL")
        )
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert verify(new_secret, got.headers, got.body) and not verify(created["secret"], got.headers, got.body)


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://10.0.0.5/hook", None),
        ("http://169.254.169.254/latest/meta-data/", None),
        ("http://[::ffff:169.254.169.254]/", None),
        ("http://[64:ff9b::a9fe:a9fe]/", None),
        ("http://100.64.0.1/", None),
        ("http://0x0a000005/", None),
        ("http://internal.integrator.example/hook", ["10.0.0.5"]),
        ("http://metadata.integrator.example/", ["169.254.169.254"]),
        ("http://mixed.integrator.example/", ["93.184.215.14", "192.168.0.10"]),
        ("http://v6.integrator.example/", ["fd00:ec2::254"]),
        ("https://user:secret@hooks.example.com/", None),
        ("ftp://hooks.example.com/", None),
    ],
)
async def test_hostile_addresses_are_refused_at_registration(client, names, url: str, resolved: Any) -> None:
    owner = await signup(client)
    if resolved:
        names.table[url.split("/")[2]] = resolved
    response = await client.post(
        "/v1/webhooks/endpoints", json={"url": url, "event_types": ["booking.created"]}, headers=owner.headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/validation-error"
    assert response.json()["errors"][0]["field"] == "url"


async def test_a_name_rebound_to_an_internal_address_is_not_sent_to(
    runtime, jobs, receiver: Receiver, names, integrator, owner_engine: AsyncEngine
) -> None:
    owner, created = integrator
    # Registered while it pointed at the receiver; now it points at the metadata service.
    names.table[NAME] = ["169.254.169.254"]
    await archive_client(runtime, owner.org_id)
    await jobs.run(*JOBS)
    assert receiver.received == []
    [message] = await messages(owner_engine, created["id"])
    assert message.status == "pending" and "not a public address" in message.last_error


async def test_unknown_event_types_and_internal_ones_are_refused(client) -> None:
    owner = await signup(client)
    listed = (await client.get("/v1/webhooks/event-types", headers=owner.headers)).json()
    names = {t["name"] for t in listed}
    assert {"booking.created", "invoice.paid", "client.archived"} <= names
    assert not any("hold" in n or "probe" in n.lower() or "disabled" in n for n in names)
    for bad in (["payment.hold_requested"], ["system.Probed"], []):
        response = await client.post(
            "/v1/webhooks/endpoints", json={"url": "https://93.184.215.14/", "event_types": bad}, headers=owner.headers
        )
        assert response.status_code == 400, bad


async def test_nothing_crosses_organisations(
    client, runtime, jobs, receiver: Receiver, names, integrator, owner_engine: AsyncEngine
) -> None:
    owner_a, endpoint_a = integrator
    owner_b = await signup(client, name="Other Cleaning")
    endpoint_b = await endpoint(client, owner_b, receiver.url("/b", host=NAME))
    await archive_client(runtime, owner_b.org_id)
    await jobs.run(*JOBS)
    # B's event reached B's endpoint only.
    assert [r.path for r in receiver.received] == ["/b"]
    assert await messages(owner_engine, endpoint_a["id"]) == []
    [message_b] = await messages(owner_engine, endpoint_b["id"])
    for method, path in [
        ("GET", f"/v1/webhooks/endpoints/{endpoint_b['id']}"),
        ("GET", f"/v1/webhooks/endpoints/{endpoint_b['id']}/messages"),
        ("POST", f"/v1/webhooks/endpoints/{endpoint_b['id']}/rotate-secret"),
        ("DELETE", f"/v1/webhooks/endpoints/{endpoint_b['id']}"),
        ("GET", f"/v1/webhooks/messages/{message_b.id}"),
        ("GET", f"/v1/webhooks/messages/{message_b.id}/attempts"),
        ("POST", f"/v1/webhooks/messages/{message_b.id}/replay"),
    ]:
        response = await client.request(method, path, headers=owner_a.headers)
        assert response.status_code == 404, (method, path, response.status_code)
    listed = (await client.get("/v1/webhooks/endpoints", headers=owner_a.headers)).json()
    assert [e["id"] for e in listed] == [endpoint_a["id"]]


async def test_only_owners_and_admins_manage_webhooks(client, integrator) -> None:
    owner, created = integrator
    for role in ("dispatcher", "finance", "viewer", "worker"):
        member = await add_member(client, owner, role)
        for method, path in [
            ("GET", "/v1/webhooks/endpoints"),
            ("GET", f"/v1/webhooks/endpoints/{created['id']}"),
            ("POST", f"/v1/webhooks/endpoints/{created['id']}/rotate-secret"),
        ]:
            response = await client.request(method, path, headers=member.headers)
            assert response.status_code == 403, (role, method, path)
    admin = await add_member(client, owner, "admin")
    assert (await client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=admin.headers)).status_code == 200


async def test_a_message_is_sent_once_however_its_jobs_race_and_a_lost_job_is_queued_again(
    client, runtime, jobs, receiver: Receiver, integrator, owner_engine: AsyncEngine
) -> None:
    from spotless.domain.webhooks.actors import deliver

    owner, created = integrator
    # An endpoint of the same organisation that asked for other types hears nothing of this one.
    other = await endpoint(client, owner, receiver.url("/bookings", host=NAME), ["booking.created"])
    await archive_client(runtime, owner.org_id)
    await jobs.run("webhooks.fan_out")
    assert await messages(owner_engine, other["id"]) == []
    [message] = await messages(owner_engine, created["id"])
    # The same delivery job twice at once (a redelivery racing the first): one POST.
    await asyncio.gather(
        deliver(owner.org_id, message.id, message.lease_token), deliver(owner.org_id, message.id, message.lease_token)
    )
    assert len(receiver.received) == 1

    # A second event whose delivery job is lost (the worker died with it): once its lease runs
    # out, the sweep queues it again, and the lost job, if it ever comes back, sends nothing.
    await archive_client(runtime, owner.org_id)
    await jobs.run("webhooks.fan_out")
    async with owner_engine.connect() as conn:
        pending = (
            await conn.execute(
                text("SELECT id, lease_token FROM webhook_messages WHERE endpoint_id = :e AND status = 'pending'"),
                {"e": created["id"]},
            )
        ).one()
    assert await queue_due() == 0  # still leased to its (lost) job
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_messages SET leased_until = now() - interval '1 second' WHERE id = :m"),
            {"m": pending.id},
        )
    assert await queue_due() == 1
    await jobs.run("webhooks.deliver")
    await deliver(owner.org_id, pending.id, pending.lease_token)  # the lost job comes back late
    assert len(receiver.received) == 2
    assert {m.status for m in await messages(owner_engine, created["id"])} == {"delivered"}
