"""Exports and dead jobs stay inside their organisation: row-level security on `exports`, routes
answering 404 for another organisation's export, permissions per role, and the dead-letter queue
showing and replaying only the caller's organisation's jobs."""

from __future__ import annotations

import time
import uuid

import pytest
from dramatiq import Message
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from spotless.domain.exports.models import Export
from tests.support.identity import add_member, signup


async def test_rls_hides_and_refuses_other_organisations_exports(client, app_sessions):
    a = await signup(client, name="Org A")
    b = await signup(client, name="Org B")
    made = await client.post("/v1/exports", json={"kind": "clients"}, headers=a.headers)
    assert made.status_code == 202
    async with app_sessions.scoped(b.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(Export)) == 0
    async with app_sessions.scoped(a.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(Export)) == 1
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_sessions.scoped(b.org_id) as session:
            await session.execute(
                text(
                    "INSERT INTO exports (id, org_id, kind, format, status, filename, content_type, created_at,"
                    " updated_at) VALUES (gen_random_uuid(), :org, 'clients', 'csv', 'queued', 'x.csv', 'text/csv',"
                    " now(), now())"
                ),
                {"org": a.org_id},
            )


async def test_another_organisations_export_is_not_found(client):
    a = await signup(client, name="Org A")
    b = await signup(client, name="Org B")
    export_id = (await client.post("/v1/exports", json={"kind": "clients"}, headers=a.headers)).json()["id"]
    assert (await client.get(f"/v1/exports/{export_id}", headers=b.headers)).status_code == 404
    assert (await client.get("/v1/exports", headers=b.headers)).json()["items"] == []
    listed = (await client.get("/v1/exports", headers=a.headers)).json()
    assert [e["id"] for e in listed["items"]] == [export_id]
    # B's request for the same kind is B's own export, not A's joined.
    theirs = (await client.post("/v1/exports", json={"kind": "clients"}, headers=b.headers)).json()
    assert theirs["id"] != export_id


async def test_roles_without_the_permissions_are_refused(client):
    owner = await signup(client)
    members = {role: await add_member(client, owner, role) for role in ("dispatcher", "viewer", "worker", "finance")}
    period = {"from": "2026-01-01", "to": "2026-01-31"}
    tax = "/v1/admin/finance/taxes/export?from=2026-01-01&to=2026-01-31"
    for role in ("dispatcher", "viewer", "worker"):
        headers = members[role].headers
        for kind in ("bookings", "clients", "invoices", "payments", "taxes"):
            body = {"kind": kind, "period": period}
            refused = await client.post("/v1/exports", json=body, headers=headers)
            assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden", (role, kind)
        assert (await client.get(tax, headers=headers)).status_code == 403, role
        assert (await client.get("/v1/exports", headers=headers)).status_code == 403, role
        assert (await client.get("/v1/admin/queue/dlq", headers=headers)).status_code == 403, role
    finance = members["finance"].headers
    assert (await client.get(tax, headers=finance)).status_code == 202
    assert (
        await client.post("/v1/exports", json={"kind": "payments", "period": period}, headers=finance)
    ).status_code == 202
    # Dead jobs are the admins': finance may export but not see or replay them.
    assert (await client.get("/v1/admin/queue/dlq", headers=finance)).status_code == 403
    replay = {"kind": "export", "ids": [str(uuid.uuid4())]}
    assert (await client.post("/v1/admin/queue/dlq/replay", json=replay, headers=finance)).status_code == 403


async def _bury(redis, settings, redis_id: str, message: Message) -> None:
    """A message in the dead-letter set exactly as Dramatiq leaves it after the last retry."""
    key = f"{settings.jobs.namespace}:{message.queue_name}.XQ"
    await redis.zadd(key, {redis_id: int(time.time() * 1000)})
    await redis.hset(f"{key}.msgs", redis_id, message.encode())


async def test_dead_jobs_are_counted_and_replayed_inside_the_organisation(client, redis, settings, owner_engine):
    a = await signup(client, name="Org A")
    b = await signup(client, name="Org B")
    mine = Message(
        queue_name="exports", actor_name="exports.run", args=(str(a.org_id), str(uuid.uuid4())), kwargs={},
        options={"traceback": "Traceback (most recent call last):\n  ...\nRuntimeError: storage down"},
    )  # fmt: skip
    theirs = Message(queue_name="exports", actor_name="exports.run", args=(str(b.org_id), str(uuid.uuid4())), kwargs={}, options={})  # fmt: skip
    event = Message(
        queue_name="default", actor_name="billing.invoice_completed_visit",
        args=("BookingCompleted", "e1", {"org_id": str(b.org_id), "booking_id": str(uuid.uuid4())}), kwargs={},
        options={},
    )  # fmt: skip
    system = Message(queue_name="default", actor_name="system.purge_outbox", args=(), kwargs={"slot": "x"}, options={})
    for redis_id, message in (("rid-a", mine), ("rid-b", theirs), ("rid-ev", event), ("rid-sys", system)):
        await _bury(redis, settings, redis_id, message)

    seen_a = (await client.get("/v1/admin/queue/dlq?kind=all&limit=1", headers=a.headers)).json()
    assert seen_a["outbox_dead_count"] == 1 and seen_a["export_dead_count"] == 0
    assert [(i["kind"], i["id"], i["name"], i["error"]) for i in seen_a["items"]] == [
        ("outbox", "rid-a", "exports.run", "RuntimeError: storage down")
    ]
    seen_b = (await client.get("/v1/admin/queue/dlq?kind=outbox", headers=b.headers)).json()
    assert seen_b["outbox_dead_count"] == 2
    assert {i["id"] for i in seen_b["items"]} == {"rid-b", "rid-ev"}

    # A cannot replay B's dead jobs, nor the system's; its own goes back through the outbox.
    replay = await client.post(
        "/v1/admin/queue/dlq/replay", json={"kind": "outbox", "ids": ["rid-b", "rid-sys", "rid-a"]}, headers=a.headers
    )
    assert replay.status_code == 202, replay.text
    assert replay.json() == {"replayed": 1, "not_found": ["rid-b", "rid-sys"]}
    key = f"{settings.jobs.namespace}:exports.XQ"
    assert await redis.hget(f"{key}.msgs", "rid-a") is None
    assert await redis.hget(f"{key}.msgs", "rid-b") is not None
    assert await redis.hget(f"{settings.jobs.namespace}:default.XQ.msgs", "rid-sys") is not None
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT actor_name, args FROM job_outbox"))).all()
    assert [(r.actor_name, r.args) for r in rows] == [("exports.run", list(mine.args))]
    assert (await client.get("/v1/admin/queue/dlq", headers=a.headers)).json()["outbox_dead_count"] == 0
    assert (await client.get("/v1/admin/queue/dlq", headers=b.headers)).json()["outbox_dead_count"] == 2
