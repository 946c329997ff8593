"""When a payment fails: the follow-up runs its steps on the organisation's days, each once however
many runs race; after the chosen step the client's visits go on payment hold (kept, marked, no
cleaner sent); paying the invoice resolves the chase and releases them. The clock is passed in."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.billing.followup import followup_due
from spotless.domain.billing.models import BillingSettings
from spotless.domain.billing.public import Entry, post_entry
from spotless.domain.messaging.actors import deliver_message
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import AppSessions, api_worker, api_world, arrange, next_weekday
from tests.support.factories.billing import new_invoice
from tests.support.identity import add_member, signup

registry.import_jobs()


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(settings, application_name="spotless-tests-followup")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


class Outbox:
    """Runs the outbox rows addressed to the named jobs once each, as a worker would."""

    def __init__(self, owner_engine: AsyncEngine) -> None:
        self.engine = owner_engine
        self.done: set[Any] = set()

    async def rows(self, name: str) -> list[Any]:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT id, args, kwargs FROM job_outbox WHERE actor_name = :n ORDER BY id"), {"n": name}
            )
            return list(found)

    async def deliver(self, *names: str, twice: bool = False) -> int:
        ran = 0
        for name in names:
            for row in await self.rows(name):
                if row.id in self.done:
                    continue
                self.done.add(row.id)
                for _ in range(2 if twice else 1):
                    await JOBS[name].fn(*row.args, **(row.kwargs or {}))
                ran += 1
        return ran


async def _settings(owner_engine: AsyncEngine, org_id: UUID, days: list[int], hold_after: int | None) -> None:
    async with arrange(owner_engine) as db:
        db.add(BillingSettings(org_id=org_id, followup_days=days, followup_hold_after_step=hold_after))


async def _invoice(owner_engine: AsyncEngine, org_id: UUID, client_id: UUID, number: int = 1) -> UUID:
    async with arrange(owner_engine) as db:
        invoice = await new_invoice(
            db,
            org_id,
            client_id,
            series="2026",
            number=number,
            display_number=f"INV-2026-{number:06d}",
            status="issued",
            total_cents=12_000,
        )
    return invoice.id


async def _event(name: str, **facts: Any) -> None:
    """The subscriber hears the event as the worker would hand it over."""
    payload = {k: str(v) if isinstance(v, UUID) else v for k, v in facts.items()}
    subscriber = {"billing.PaymentFailed": "billing.start_followup", "billing.InvoiceOverdue": "billing.start_followup"}
    await JOBS[subscriber[name]].fn(name, "event-1", payload)


async def _steps(owner_engine: AsyncEngine, invoice_id: UUID) -> list[int]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.step FROM followup_steps s JOIN followups f ON f.id = s.followup_id"
                " WHERE f.invoice_id = :i ORDER BY s.step"
            ),
            {"i": invoice_id},
        )
        return [r.step for r in rows]


async def _run_twice_at(moment: datetime) -> None:
    # Two runs of the job at once (two schedulers, a redelivery): each step must run once.
    await asyncio.gather(followup_due(now=moment.isoformat()), followup_due(now=moment.isoformat()))


async def test_steps_run_on_the_organisations_days_each_once_even_when_runs_race(
    client, owner_engine: AsyncEngine, runtime, caplog
) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=0)
    await _settings(owner_engine, world.org_id, [1, 3, 7, 14], None)
    invoice_id = await _invoice(owner_engine, world.org_id, world.client_id)
    outbox = Outbox(owner_engine)

    started = datetime.now(UTC)
    await _event("billing.PaymentFailed", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)
    # A second trigger for the same invoice joins the chase already running.
    await _event("billing.InvoiceOverdue", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)

    expected = [(0.5, []), (1.01, [1]), (2, [1]), (3.01, [1, 2]), (6.9, [1, 2]), (7.01, [1, 2, 3])]
    expected += [(14.01, [1, 2, 3, 4]), (40, [1, 2, 3, 4])]
    caplog.set_level(logging.INFO, logger="spotless.billing.followup")
    for days, steps in expected:
        await _run_twice_at(started + timedelta(days=days, minutes=1))
        assert await _steps(owner_engine, invoice_id) == steps, f"day {days}"
        assert await outbox.deliver("billing.send_followup_step") == (1 if days in (1.01, 3.01, 7.01, 14.01) else 0)

    followup = await client.get(f"/v1/invoices/{invoice_id}/followup", headers=owner.headers)
    assert followup.status_code == 200, followup.text
    assert followup.json()["schedule_days"] == [1, 3, 7, 14] and followup.json()["hold_after_step"] is None
    body = followup.json()["followup"]
    assert body["reason"] == "charge_failed" and body["status"] == "active" and body["step"] == 4
    assert [s["step"] for s in body["steps"]] == [1, 2, 3, 4] and body["next_run_at"] is None
    assert body["hold_applied"] is False

    # Each step requested the client's message and the office's, once (send key `step-N`); the pay
    # link is minted only when the client's message is built, so none exists yet, nor rests in
    # the outbox or the deliveries' params.
    async with owner_engine.connect() as conn:
        told = (
            await conn.execute(
                text("SELECT kind, send_key, params::text AS params FROM deliveries WHERE channel = 'email'")
            )
        ).all()
        links = await conn.scalar(text("SELECT count(*) FROM invoice_links WHERE invoice_id = :i"), {"i": invoice_id})
    assert sorted((r.kind, r.send_key) for r in told) == sorted(
        (kind, f"step-{n}") for kind in ("payment.followup", "office.followup_step") for n in (1, 2, 3, 4)
    )
    assert links == 0
    said = [r.getMessage() for r in caplog.records if r.name == "spotless.billing.followup"]
    assert any("step 1/4" in m and str(invoice_id) in m for m in said)
    assert not any(re.search(r"[A-Za-z0-9_-]{40,}", m) or "http" in m for m in said)
    async with owner_engine.connect() as conn:
        outbox_args = (await conn.execute(text("SELECT args::text FROM job_outbox"))).scalars().all()
    assert not any(re.search(r"[A-Za-z0-9_-]{40,}", a) for a in outbox_args)  # no token rests there
    assert not any(re.search(r"[A-Za-z0-9_-]{40,}", r.params) for r in told)

    # Sent (log mode): the client's message carries a fresh link, minted then (one per step).
    await conn_exec(owner_engine, "UPDATE client SET email = 'ada@example.com' WHERE id = :c", c=world.client_id)
    async with owner_engine.connect() as conn:
        ids = (await conn.execute(text("SELECT id FROM deliveries WHERE channel = 'email'"))).scalars().all()
    for delivery_id in ids:
        await deliver_message(str(world.org_id), str(delivery_id))
    async with owner_engine.connect() as conn:
        links = await conn.scalar(text("SELECT count(*) FROM invoice_links WHERE invoice_id = :i"), {"i": invoice_id})
        statuses = (await conn.execute(text("SELECT DISTINCT status FROM deliveries WHERE channel = 'email'"))).all()
    assert links == 4 and [s.status for s in statuses] == ["logged"]


async def conn_exec(owner_engine: AsyncEngine, statement: str, **params: Any) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(statement), params)


async def _field_world(client: Any) -> dict[str, Any]:
    owner = await signup(client)
    world = await api_world(client, owner, workers=0)
    cleaner = await add_member(client, owner, "worker")
    mine = await api_worker(client, owner, name="Sam", user_id=cleaner.user_id)
    day = next_weekday(2, weeks_ahead=3)
    ids = []
    for hh in (9, 13):
        made = await client.post("/v1/bookings", json=world.booking(day, hh, workers=[mine]), headers=owner.headers)
        assert made.status_code == 201, made.text
        await client.post(f"/v1/bookings/{made.json()['id']}/confirm", headers=owner.headers)
        ids.append(made.json()["id"])
    return {"owner": owner, "world": world, "cleaner": cleaner, "worker_id": mine, "day": day, "ids": ids}


async def _jobs(client: Any, w: dict[str, Any]) -> list[str]:
    listed = await client.get("/v1/worker/jobs", params={"date": w["day"].isoformat()}, headers=w["cleaner"].headers)
    assert listed.status_code == 200, listed.text
    return [j["booking_id"] for j in listed.json()]


async def _held(client: Any, w: dict[str, Any]) -> list[bool]:
    out = []
    for booking_id in w["ids"]:
        b = (await client.get(f"/v1/bookings/{booking_id}", headers=w["owner"].headers)).json()
        assert b["status"] == "confirmed"  # nothing cancelled, nothing moved on
        out.append(b["payment_hold"])
    return out


async def test_after_the_chosen_step_visits_are_held_and_paying_releases_them(
    client, owner_engine: AsyncEngine, app_sessions: AppSessions, runtime
) -> None:
    w = await _field_world(client)
    world, owner = w["world"], w["owner"]
    await _settings(owner_engine, world.org_id, [1, 3, 7], 2)
    invoice_id = await _invoice(owner_engine, world.org_id, world.client_id)
    outbox = Outbox(owner_engine)
    before = {i: (await client.get(f"/v1/bookings/{i}", headers=owner.headers)).json() for i in w["ids"]}

    started = datetime.now(UTC)
    await _event("billing.InvoiceOverdue", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)
    await _run_twice_at(started + timedelta(days=1, minutes=1))
    assert await outbox.deliver("scheduling.hold_client_visits") == 0  # step 1: no hold yet
    assert await _held(client, w) == [False, False]

    await _run_twice_at(started + timedelta(days=3, minutes=1))
    assert await outbox.deliver("scheduling.hold_client_visits", twice=True) == 1
    assert await _held(client, w) == [True, True]
    for booking_id in w["ids"]:
        after = (await client.get(f"/v1/bookings/{booking_id}", headers=owner.headers)).json()
        kept = ("starts_at", "ends_at", "worker_ids", "status")
        assert {k: after[k] for k in kept} == {k: before[booking_id][k] for k in kept}  # slot kept
    assert await _jobs(client, w) == []  # the cleaner is not sent
    refused = await client.post(f"/v1/worker/jobs/{w['ids'][0]}/start", headers=w["cleaner"].headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/payment-hold"
    dispatch = await client.get("/v1/bookings", params={"payment_hold": "true"}, headers=owner.headers)
    assert [b["id"] for b in dispatch.json()["items"]] == w["ids"]
    state = (await client.get(f"/v1/invoices/{invoice_id}/followup", headers=owner.headers)).json()["followup"]
    assert state["step"] == 2 and state["hold_applied"] is True and state["reason"] == "overdue"

    # The client pays: the ledger marks the invoice paid, the chase resolves, the visits go back.
    async with app_sessions.scoped(world.org_id) as s:
        await post_entry(
            s,
            Entry(
                org_id=world.org_id,
                client_id=world.client_id,
                invoice_id=invoice_id,
                kind="payment",
                amount_cents=12_000,
                source="manual",
                method="etransfer",
                reference="ET-1",
            ),
        )
    assert await outbox.deliver("billing.resolve_followup", twice=True) == 1
    assert await outbox.deliver("scheduling.release_client_visits", twice=True) == 1
    assert await _held(client, w) == [False, False]
    assert await _jobs(client, w) == w["ids"]
    state = (await client.get(f"/v1/invoices/{invoice_id}/followup", headers=owner.headers)).json()["followup"]
    assert state["status"] == "resolved" and state["next_run_at"] is None

    await _run_twice_at(started + timedelta(days=7, minutes=1))
    assert await _steps(owner_engine, invoice_id) == [1, 2]  # no step after it resolved
    started_job = await client.post(f"/v1/worker/jobs/{w['ids'][0]}/start", headers=w["cleaner"].headers)
    assert started_job.status_code == 201, started_job.text
    async with owner_engine.connect() as conn:
        names = (await conn.execute(text("SELECT args->>0 FROM job_outbox"))).scalars().all()
    assert "scheduling.BookingCancelled" not in names


async def test_a_release_heard_before_the_request_leaves_the_visits_free(
    client, owner_engine: AsyncEngine, app_sessions: AppSessions, runtime
) -> None:
    w = await _field_world(client)
    world = w["world"]
    await _settings(owner_engine, world.org_id, [1], 1)
    invoice_id = await _invoice(owner_engine, world.org_id, world.client_id)
    outbox = Outbox(owner_engine)
    started = datetime.now(UTC)
    await _event("billing.PaymentFailed", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)
    await _run_twice_at(started + timedelta(days=1, minutes=1))
    stopped = await client.post(f"/v1/invoices/{invoice_id}/followup/stop", headers=w["owner"].headers)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["followup"]["status"] == "stopped"
    # The release is delivered first, the request late: the visits stay free.
    assert await outbox.deliver("scheduling.release_client_visits") == 1
    assert await outbox.deliver("scheduling.hold_client_visits") == 1
    assert await _held(client, w) == [False, False]
    assert await _jobs(client, w) == w["ids"]


async def test_stopping_releases_the_visits_and_only_finance_may_see_or_stop(
    client, owner_engine: AsyncEngine, runtime
) -> None:
    w = await _field_world(client)
    world, owner = w["world"], w["owner"]
    await _settings(owner_engine, world.org_id, [1, 2], 1)
    invoice_id = await _invoice(owner_engine, world.org_id, world.client_id)
    outbox = Outbox(owner_engine)
    started = datetime.now(UTC)
    await _event("billing.PaymentFailed", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)
    await _run_twice_at(started + timedelta(days=1, minutes=1))
    assert await outbox.deliver("scheduling.hold_client_visits") == 1
    assert await _held(client, w) == [True, True]

    url = f"/v1/invoices/{invoice_id}/followup"
    dispatcher = await add_member(client, owner, "dispatcher")
    viewer = await add_member(client, owner, "viewer")
    finance = await add_member(client, owner, "finance")
    for member in (dispatcher, viewer, w["cleaner"]):
        assert (await client.get(url, headers=member.headers)).status_code == 403
        assert (await client.post(f"{url}/stop", headers=member.headers)).status_code == 403
    assert (await client.get(url, headers=finance.headers)).status_code == 200

    unchased = await _invoice(owner_engine, world.org_id, world.client_id, number=2)
    never = await client.get(f"/v1/invoices/{unchased}/followup", headers=finance.headers)
    assert never.status_code == 200 and never.json()["followup"] is None
    assert never.json()["schedule_days"] == [1, 2] and never.json()["hold_after_step"] == 1
    missing = await client.get(f"/v1/invoices/{UUID(int=7)}/followup", headers=finance.headers)
    assert missing.status_code == 404

    stranger = await signup(client)
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    assert (await client.post(f"{url}/stop", headers=stranger.headers)).status_code == 404
    assert (await client.get(url, headers=owner.headers)).json()["followup"]["status"] == "active"  # untouched

    stopped = await client.post(f"{url}/stop", headers=finance.headers)
    assert stopped.status_code == 200 and stopped.json()["followup"]["status"] == "stopped"
    again = await client.post(f"{url}/stop", headers=finance.headers)
    assert again.status_code == 409 and again.json()["type"] == "/problems/followup-not-active"
    assert await outbox.deliver("scheduling.release_client_visits") == 1
    assert await _held(client, w) == [False, False]
    await _run_twice_at(started + timedelta(days=2, minutes=1))
    assert await _steps(owner_engine, invoice_id) == [1]  # a stopped chase runs no more steps
    async with owner_engine.connect() as conn:
        audited = (
            (
                await conn.execute(
                    text("SELECT action FROM admin_audit_logs WHERE resource_id = :i ORDER BY created_at"),
                    {"i": str(invoice_id)},
                )
            )
            .scalars()
            .all()
        )
    assert audited == ["followup.start", "followup.step", "followup.stop"]


async def test_an_invoice_written_off_or_voided_ends_the_chase_and_frees_the_visits(
    client, owner_engine: AsyncEngine, runtime
) -> None:
    w = await _field_world(client)
    world, owner = w["world"], w["owner"]
    await _settings(owner_engine, world.org_id, [1, 5], 1)
    written_off = await _invoice(owner_engine, world.org_id, world.client_id, number=1)
    voided = await _invoice(owner_engine, world.org_id, world.client_id, number=2)
    outbox = Outbox(owner_engine)
    started = datetime.now(UTC)
    for invoice_id in (written_off, voided):
        await _event("billing.InvoiceOverdue", org_id=world.org_id, invoice_id=invoice_id, client_id=world.client_id)
    await _run_twice_at(started + timedelta(days=1, minutes=1))
    assert await outbox.deliver("scheduling.hold_client_visits") == 2  # held for both invoices
    assert await _held(client, w) == [True, True]

    # One is voided (its event heard): the other still holds the client.
    await JOBS["billing.resolve_followup"].fn(
        "billing.InvoiceVoided", "event-2", {"org_id": str(world.org_id), "invoice_id": str(voided)}
    )
    assert await outbox.deliver("scheduling.release_client_visits") == 1
    assert await _held(client, w) == [True, True]
    # The other is written off through the API: its chase ends in that same transaction (no
    # further step, not even the one due next), and the visits are released.
    response = await client.post(
        f"/v1/invoices/{written_off}/uncollectible", json={"reason": "moved away"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    state = (await client.get(f"/v1/invoices/{written_off}/followup", headers=owner.headers)).json()["followup"]
    assert state["status"] == "resolved" and state["next_run_at"] is None
    assert await outbox.deliver("scheduling.release_client_visits") == 1
    assert await _held(client, w) == [False, False]
    await _run_twice_at(started + timedelta(days=5, minutes=1))
    assert await _steps(owner_engine, written_off) == [1]
    assert await outbox.deliver("billing.send_followup_step") == 2  # the two step-1 notices only
    async with owner_engine.connect() as conn:
        why = await conn.scalar(
            text("SELECT after->>'why' FROM admin_audit_logs WHERE resource_id = :i AND action = 'followup.resolve'"),
            {"i": str(written_off)},
        )
    assert why == "uncollectible"
    for invoice_id in (written_off, voided):
        state = (await client.get(f"/v1/invoices/{invoice_id}/followup", headers=owner.headers)).json()["followup"]
        assert state["status"] == "resolved" and state["hold_applied"] is True

    # A paid invoice, or a credit note, is never chased.
    async with arrange(owner_engine) as db:
        paid = await new_invoice(db, world.org_id, world.client_id, series="2026", number=3, status="paid")
        credit = await new_invoice(
            db,
            world.org_id,
            world.client_id,
            series="CN",
            number=1,
            status="issued",
            kind="credit_note",
            credit_for_id=paid.id,
        )
    for invoice in (paid, credit):
        await _event("billing.PaymentFailed", org_id=world.org_id, invoice_id=invoice.id, client_id=world.client_id)
        got = await client.get(f"/v1/invoices/{invoice.id}/followup", headers=owner.headers)
        assert got.status_code == 200 and got.json()["followup"] is None
