"""Retention per organisation: the settings (defaults, bounds, who may change them) and the job
that removes what is past retention, only that, only in the organisation whose settings say so."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text

from spotless.domain.retention.jobs import apply_for_org, apply_retention
from tests.support.identity import add_member, signup


async def test_settings_have_defaults_bounds_and_owners(api):
    owner = await signup(api)
    read = await api.get("/v1/admin/retention", headers=owner.headers)
    assert read.status_code == 200, read.text
    assert read.json() == {"message_body_days": 90, "export_days": 30, "photo_days": 365, "invoices_kept": True}
    changed = await api.put("/v1/admin/retention", json={"export_days": 5}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["export_days"] == 5 and changed.json()["photo_days"] == 365
    assert (await api.get("/v1/admin/retention", headers=owner.headers)).json()["export_days"] == 5
    for bad in ({"export_days": 0}, {"photo_days": 4000}, {"invoice_days": 10}):
        refused = await api.put("/v1/admin/retention", json=bad, headers=owner.headers)
        assert refused.status_code == 400, bad
        assert refused.headers["content-type"].startswith("application/problem+json")
    for role in ("dispatcher", "finance", "viewer"):
        member = await add_member(api, owner, role)
        assert (await api.get("/v1/admin/retention", headers=member.headers)).status_code == 403
        assert (
            await api.put("/v1/admin/retention", json={"export_days": 1}, headers=member.headers)
        ).status_code == 403
    admin = await add_member(api, owner, "admin")
    assert (await api.put("/v1/admin/retention", json={"photo_days": 30}, headers=admin.headers)).status_code == 200


async def _export(conn: Any, org_id: UUID, *, status: str, age_days: int, key: str | None = None) -> str:
    row = await conn.execute(
        text(
            "INSERT INTO exports (id, org_id, kind, format, status, filename, content_type, object_key, error,"
            " expires_at, created_at, updated_at) VALUES (gen_random_uuid(), :org, 'clients', 'csv', CAST(:status AS text),"
            " 'clients.csv', 'text/csv', :key, CASE WHEN CAST(:status AS text) = 'failed' THEN 'boom' END,"
            " CASE WHEN CAST(:status AS text) = 'succeeded' THEN now() + interval '1 day' END,"
            " now() - make_interval(days => :age), now() - make_interval(days => :age)) RETURNING id"
        ),
        {"org": org_id, "status": status, "age": age_days, "key": key or ("k" if status == "succeeded" else None)},
    )
    return str(row.scalar_one())


async def _exports(owner_engine: Any, org_id: UUID) -> set[str]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM exports WHERE org_id = :org"), {"org": org_id})
        return {str(r.id) for r in rows}


async def test_retention_removes_only_what_is_past_each_organisations_retention(api, runtime, owner_engine):
    a = await signup(api, name="Org A")
    b = await signup(api, name="Org B")
    assert (await api.put("/v1/admin/retention", json={"export_days": 5}, headers=a.headers)).status_code == 200
    rows: dict[str, dict[str, str]] = {}
    async with owner_engine.begin() as conn:
        for member in (a, b):
            rows[str(member.org_id)] = {
                "expired_10d": await _export(conn, member.org_id, status="expired", age_days=10),
                "expired_40d": await _export(conn, member.org_id, status="expired", age_days=40),
                "failed_40d": await _export(conn, member.org_id, status="failed", age_days=40),
                "expired_2d": await _export(conn, member.org_id, status="expired", age_days=2),
                # Its file is not deleted yet: the row stays until the exports sweep has done it.
                "file_left_40d": await _export(conn, member.org_id, status="expired", age_days=40, key="left"),
                "succeeded_40d": await _export(conn, member.org_id, status="succeeded", age_days=40),
            }
        await conn.execute(text("DELETE FROM job_outbox"))
        await conn.execute(
            text(
                "INSERT INTO job_outbox (id, actor_name, queue_name, args, kwargs, available_at, sent_at, attempts,"
                " created_at, updated_at) VALUES"
                " (gen_random_uuid(), 'old.sent', 'default', '[]', '{}', now(), now() - interval '5 days', 0, now(), now()),"
                " (gen_random_uuid(), 'new.sent', 'default', '[]', '{}', now(), now() - interval '1 day', 0, now(), now()),"
                " (gen_random_uuid(), 'old.pending', 'default', '[]', '{}', now() - interval '9 days', NULL, 3,"
                "  now(), now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO inbox_events (id, source, external_id, payload, received_at, handled_at, attempts) VALUES"
                " (gen_random_uuid(), 'stripe', 'evt_old', '{}', now() - interval '40 days',"
                "  now() - interval '40 days', 1),"
                " (gen_random_uuid(), 'stripe', 'evt_new', '{}', now() - interval '1 day', now() - interval '1 day', 1),"
                " (gen_random_uuid(), 'stripe', 'evt_failing', '{}', now() - interval '40 days', NULL, 5)"
            )
        )
    a_rows, b_rows = rows[str(a.org_id)], rows[str(b.org_id)]

    # A's retention run touches A's rows only, even those past B's retention.
    counts = await apply_for_org(runtime, a.org_id, runtime.settings.retention.batch_size)
    assert counts["exports"] == 3
    assert await _exports(owner_engine, a.org_id) == {
        a_rows["expired_2d"],
        a_rows["file_left_40d"],
        a_rows["succeeded_40d"],
    }
    assert await _exports(owner_engine, b.org_id) == set(b_rows.values())

    # The system job: every organisation by its own settings (B: the default 30 days), then the
    # system tables (outbox 3 days, inbox 30), in batches of 2.
    report = await apply_retention(runtime)
    assert report["exports"] == 2 and report["outbox"] == 1 and report["inbox"] == 1
    assert await _exports(owner_engine, b.org_id) == {
        b_rows["expired_10d"],
        b_rows["expired_2d"],
        b_rows["file_left_40d"],
        b_rows["succeeded_40d"],
    }
    async with owner_engine.connect() as conn:
        actors = set((await conn.execute(text("SELECT actor_name FROM job_outbox"))).scalars())
        events = set((await conn.execute(text("SELECT external_id FROM inbox_events"))).scalars())
    assert {"new.sent", "old.pending"} <= actors and "old.sent" not in actors
    assert events == {"evt_new", "evt_failing"}

    # Idempotent: nothing is left to remove.
    again = await apply_retention(runtime)
    assert again.get("exports", 0) == 0 and again.get("inbox", 0) == 0


async def test_an_admin_runs_only_their_own_organisations_retention(api, runtime, owner_engine):
    from spotless.domain.retention.jobs import apply_org_retention_job

    a = await signup(api, name="Org A")
    b = await signup(api, name="Org B")
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM job_outbox"))
        a_old = await _export(conn, a.org_id, status="expired", age_days=40)
        b_old = await _export(conn, b.org_id, status="expired", age_days=40)
    queued = await api.post("/v1/admin/retention/cleanup", headers=a.headers)
    assert queued.status_code == 202, queued.text
    async with owner_engine.connect() as conn:
        jobs = (await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'retention.apply_org'"))).all()
    assert [j.args for j in jobs] == [[str(a.org_id)]]
    await apply_org_retention_job(a.org_id)
    assert a_old not in await _exports(owner_engine, a.org_id)
    assert b_old in await _exports(owner_engine, b.org_id)
    dispatcher = await add_member(api, b, "dispatcher")
    assert (await api.post("/v1/admin/retention/cleanup", headers=dispatcher.headers)).status_code == 403


async def test_delivered_message_bodies_are_cleared_past_retention_and_their_log_kept(api, runtime, owner_engine):
    from tests.integration.retention.deliveries import add_delivery, delivery
    from tests.support.factories import arrange, new_client

    a = await signup(api, name="Org A")
    b = await signup(api, name="Org B")
    assert (await api.put("/v1/admin/retention", json={"message_body_days": 30}, headers=a.headers)).status_code == 200
    async with arrange(owner_engine) as db:
        a_client = (await new_client(db, a.org_id, name="Ada Lovelace")).id
        b_client = (await new_client(db, b.org_id, name="Ada Lovelace")).id
    async with owner_engine.begin() as conn:
        a_old = [await add_delivery(conn, a.org_id, a_client, age_days=40) for _ in range(3)]
        a_bounced = await add_delivery(conn, a.org_id, a_client, age_days=40, status="bounced")
        a_new = await add_delivery(conn, a.org_id, a_client, age_days=10)
        # Still owed: its parameters are what it will be built from.
        a_queued = await add_delivery(conn, a.org_id, a_client, age_days=40, status="queued")
        b_old = await add_delivery(conn, b.org_id, b_client, age_days=40)
        b_older = await add_delivery(conn, b.org_id, b_client, age_days=100)

    counts = await apply_for_org(runtime, a.org_id, runtime.settings.retention.batch_size)
    assert counts["message_bodies"] == 4  # in batches of 2
    for cleared in (*a_old, a_bounced):
        row = await delivery(owner_engine, cleared)
        assert row.params == {} and row.summary is None
        # The log line stays: who, where, when, what became of it.
        assert row.address == "ada.lovelace@example.com" and row.finished_at is not None
        assert row.status in ("sent", "bounced") and row.message_id
    for kept in (a_new, a_queued, b_old, b_older):
        row = await delivery(owner_engine, kept)
        assert row.params == {"note": "door code 1234"} and row.summary == "Your visit on Monday, Ada Lovelace"
    log = await api.get(f"/v1/clients/{a_client}/messages", headers=a.headers)
    assert log.status_code == 200, log.text
    entries = {e["id"]: e for e in log.json()["items"]}
    assert len(entries) == 6
    assert entries[str(a_bounced)]["status"] == "bounced" and entries[str(a_bounced)]["summary"] is None
    assert entries[str(a_new)]["summary"] == "Your visit on Monday, Ada Lovelace"

    # The system job: B by its default (90 days) clears only its 100-day-old message; run again,
    # nothing is left to clear.
    report = await apply_retention(runtime)
    assert report["message_bodies"] == 1
    assert (await delivery(owner_engine, b_older)).summary is None
    assert (await delivery(owner_engine, b_old)).summary is not None
    assert (await apply_retention(runtime))["message_bodies"] == 0


async def test_the_retention_job_took_over_the_outbox_purge(runtime, owner_engine):
    from spotless.lib.jobs import JOBS
    from spotless.lib.jobs.registry import resolve_job

    # The old job's name still runs something: the job that now does its work.
    assert "system.purge_outbox" not in JOBS
    assert resolve_job("system.purge_outbox").name == "retention.apply"
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM job_outbox"))
        await conn.execute(
            text(
                "INSERT INTO job_outbox (id, actor_name, queue_name, args, kwargs, available_at, sent_at, attempts,"
                " created_at, updated_at) VALUES"
                " (gen_random_uuid(), 'old.sent', 'default', '[]', '{}', now(), now() - interval '4 days', 0, now(), now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO scheduled_runs (job_name, slot, started_at, status, attempts) VALUES"
                " ('test.old', now() - interval '8 days', now() - interval '8 days', 'done', 1),"
                " ('test.recent', now() - interval '6 days', now() - interval '6 days', 'done', 1)"
            )
        )
    report = await apply_retention(runtime)
    assert report["outbox"] == 1 and report["scheduled_runs"] >= 1
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE actor_name = 'old.sent'")) == 0
        runs = set(
            (await conn.execute(text("SELECT job_name FROM scheduled_runs WHERE job_name LIKE 'test.%'"))).scalars()
        )
    assert runs == {"test.recent"}
