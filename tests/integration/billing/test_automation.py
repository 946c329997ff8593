"""Invoices nobody types: a completed visit invoices itself in 'per_visit' mode (once, however
often the event is delivered), 'per_period' bills each client's visits of the period just ended,
and the overdue job marks open invoices past due once, in the organisation's own date."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.models import Invoice, InvoicedBooking
from spotless.lib.jobs.registry import JOBS
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import api_world, arrange, new_address, new_booking, new_client, new_service, next_weekday
from tests.support.factories.billing import api_draft
from tests.support.identity import signup

SNAPSHOT = {"line_items": [{"kind": "base", "description": "Standard clean", "quantity": 1,
                            "unit_price_cents": 10_000, "amount_cents": 10_000}], "subtotal_cents": 10_000}  # fmt: skip


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(settings, application_name="billing-jobs-test")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


async def _deliver(owner_engine: AsyncEngine, subscriber: str) -> int:
    """Each outbox row addressed to `subscriber`, run twice, as a redelivering worker would."""
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = :n"), {"n": subscriber})).all()
    for _ in range(2):
        for row in rows:
            await JOBS[subscriber].fn(*row.args)
    return len(rows)


async def _invoices(owner_engine: AsyncEngine, org_id: Any) -> list[Invoice]:
    async with arrange(owner_engine) as db:
        return list(await db.scalars(select(Invoice).where(Invoice.org_id == org_id).order_by(Invoice.created_at)))


async def _complete_a_visit(client: Any, owner: Any) -> str:
    world = await api_world(client, owner, workers=1)
    created = await client.post("/v1/bookings", json=world.booking(next_weekday(2), 10), headers=owner.headers)
    assert created.status_code == 201, created.text
    booking_id = created.json()["id"]
    for action in ("confirm", "complete"):
        response = await client.post(f"/v1/bookings/{booking_id}/{action}", headers=owner.headers)
        assert response.status_code == 200, response.text
    return str(booking_id)


async def test_per_visit_mode_invoices_a_completed_visit_once(client, owner_engine, runtime) -> None:
    owner = await signup(client)
    await client.put(
        "/v1/billing/settings", json={"invoicing_mode": "per_visit", "tax_region": "ON"}, headers=owner.headers
    )
    booking_id = await _complete_a_visit(client, owner)
    assert await _deliver(owner_engine, "billing.invoice_completed_visit") == 1
    (invoice,) = await _invoices(owner_engine, owner.org_id)
    assert invoice.status == "issued" and invoice.number == 1 and invoice.tax_region == "ON"
    assert invoice.total_cents > invoice.subtotal_cents > 0
    read = (await client.get(f"/v1/invoices/{invoice.id}", headers=owner.headers)).json()
    assert read["booking_ids"] == [booking_id]


async def test_manual_mode_invoices_nothing_by_itself(client, owner_engine, runtime) -> None:
    owner = await signup(client)
    await _complete_a_visit(client, owner)
    assert await _deliver(owner_engine, "billing.invoice_completed_visit") == 1
    assert await _invoices(owner_engine, owner.org_id) == []


async def test_per_period_mode_bills_each_client_for_the_month_just_ended(client, owner_engine, runtime) -> None:
    owner = await signup(client)
    await client.put("/v1/billing/settings", json={"invoicing_mode": "per_period", "period": "monthly"},
                     headers=owner.headers)  # fmt: skip
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 07:00 in Toronto: November has just ended there
    async with arrange(owner_engine) as db:
        service = await new_service(db, owner.org_id)
        visits: dict[str, list[Any]] = {}
        for name, days in (("Ann", (3, 10, 20)), ("Bob", (15,))):
            person = await new_client(db, owner.org_id, name=name)
            address = await new_address(db, owner.org_id, person.id, region="ON")
            visits[name] = [
                await new_booking(
                    db,
                    owner.org_id,
                    person.id,
                    address.id,
                    service.id,
                    status="completed",
                    price=SNAPSHOT,
                    starts_at=datetime(2026, 11, day, 15, tzinfo=UTC),
                )
                for day in days
            ]
        # This month's visit waits for its own period.
        later = await new_booking(db, owner.org_id, person.id, address.id, service.id, status="completed",
                                  price=SNAPSHOT, starts_at=datetime(2026, 12, 1, 10, tzinfo=UTC))  # fmt: skip
        # Not done yet: never billed.
        await new_booking(db, owner.org_id, person.id, address.id, service.id, status="confirmed",
                          price=SNAPSHOT, starts_at=datetime(2026, 11, 28, 15, tzinfo=UTC))  # fmt: skip
    for _ in range(2):  # a second run finds nothing left to bill
        await JOBS["billing.invoice_period"].fn(now=now.isoformat())
    invoices = await _invoices(owner_engine, owner.org_id)
    by_client = {i.client_name: i for i in invoices}
    assert sorted(by_client) == ["Ann", "Bob"]
    assert by_client["Ann"].subtotal_cents == 30_000 and by_client["Bob"].subtotal_cents == 10_000
    assert {(i.period_start.isoformat(), i.period_end.isoformat()) for i in invoices} == {("2026-11-01", "2026-11-30")}
    assert all(i.status == "issued" for i in invoices) and sorted(i.number for i in invoices) == [1, 2]
    async with arrange(owner_engine) as db:
        billed = set(await db.scalars(select(InvoicedBooking.booking_id)))
    assert later.id not in billed and {v.id for vs in visits.values() for v in vs} == billed


async def test_overdue_is_marked_once_by_the_local_date_and_paid_invoices_are_left(
    client, owner_engine, runtime
) -> None:
    owner = await signup(client)  # America/Toronto
    open_one, paid_one, not_yet = [await api_draft(client, owner) for _ in range(3)]
    for draft in (open_one, paid_one, not_yet):
        await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)
    await client.post(f"/v1/invoices/{paid_one['id']}/payments", json={"amount_cents": 12_000, "method": "cash"},
                      headers=owner.headers)  # fmt: skip
    async with arrange(owner_engine) as db:
        for draft, due in (
            (open_one, date(2026, 11, 30)),
            (paid_one, date(2026, 11, 30)),
            (not_yet, date(2026, 12, 1)),
        ):
            await db.execute(text("UPDATE invoices SET due_on = :d WHERE id = :i"), {"d": due, "i": UUID(draft["id"])})
    # 03:00 UTC on 1 December is still 30 November in Toronto: nothing is past due there yet.
    await JOBS["billing.mark_overdue"].fn(now="2026-12-01T03:00:00+00:00")
    assert (await client.get("/v1/invoices?overdue=true", headers=owner.headers)).json()["items"] == []
    for _ in range(2):
        await JOBS["billing.mark_overdue"].fn(now="2026-12-01T12:00:00+00:00")
    overdue = (await client.get("/v1/invoices?overdue=true", headers=owner.headers)).json()["items"]
    assert [i["id"] for i in overdue] == [open_one["id"]]
    # The office's audit trail says when, once, and that the system did it.
    trail = await client.get("/v1/admin/audit", params={"action": "billing.invoice.overdue"}, headers=owner.headers)
    assert [(e["resource_id"], e["actor_user_id"]) for e in trail.json()["items"]] == [(open_one["id"], None)]
    # Paid later: no longer overdue.
    await client.post(f"/v1/invoices/{open_one['id']}/payments", json={"amount_cents": 12_000, "method": "etransfer"},
                      headers=owner.headers)  # fmt: skip
    assert (await client.get("/v1/invoices?overdue=true", headers=owner.headers)).json()["items"] == []


def test_periods_just_ended() -> None:
    from spotless.domain.billing.automation import period_just_ended

    assert period_just_ended("monthly", date(2026, 3, 1)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_just_ended("monthly", date(2026, 1, 15)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert period_just_ended("weekly", date(2026, 12, 2)) == (date(2026, 11, 23), date(2026, 11, 29))  # a Wednesday
    assert period_just_ended("weekly", date(2026, 11, 30)) == (date(2026, 11, 23), date(2026, 11, 29))
