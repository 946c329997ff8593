"""The qbo-sync job against the fake QuickBooks: what it pushes (customers, invoices with our number
as DocNumber, payments, refunds as RefundReceipt), that a replayed create makes one object, the
duplicate-name choice (never a second customer), a stale SyncToken re-read and retried once, 429
back-off, a DocNumber collision reported, the CDC pull marking an invoice paid there as differing,
and the cadence (a second run within the interval does nothing)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from spotless.domain.integrations.quickbooks.actors import qbo_push_waiting, qbo_sync, sync_due
from spotless.domain.integrations.quickbooks.client import QboClient
from spotless.domain.integrations.quickbooks.limiter import RealmLimiter
from spotless.lib.jobs.registry import resolve_job
from tests.fakes.quickbooks import FakeQuickBooks
from tests.integration.integrations.core.conftest import connection_row
from tests.integration.integrations.quickbooks.conftest import (
    REALM,
    books,
    due_again,
    issued_invoice,
    links,
    pay,
)
from tests.support.factories import arrange
from tests.support.factories.clients import new_client
from tests.support.integrations import connect


async def test_a_pass_pushes_customer_invoice_payment_and_refund_once(
    owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    b = await books(owner_engine, qbo_settings)
    invoice_id = await issued_invoice(owner_engine, b)
    await pay(runtime, b, invoice_id, 12_500)
    await pay(runtime, b, invoice_id, 2_500, kind="refund")
    assert resolve_job("qbo-sync").name == "integrations.qbo_sync"
    await qbo_sync(slot=None)

    [customer] = fake_qbo.all(REALM, "Customer")
    assert customer["DisplayName"] == "Ada Client"
    [invoice] = fake_qbo.all(REALM, "Invoice")
    assert invoice["DocNumber"] == "INV-000001" and invoice["CustomerRef"]["value"] == customer["Id"]
    assert invoice["TotalAmt"] == 125.0 and invoice["Balance"] == 0.0
    [payment] = fake_qbo.all(REALM, "Payment")
    assert payment["TotalAmt"] == 125.0 and payment["Line"][0]["LinkedTxn"][0]["TxnId"] == invoice["Id"]
    [refund] = fake_qbo.all(REALM, "RefundReceipt")
    assert refund["TotalAmt"] == 25.0 and refund["CustomerRef"]["value"] == customer["Id"]
    # Booked to the company's own service item, paid back from its bank account (both required there).
    assert refund["DepositToAccountRef"]["value"] == "35"
    assert {line["SalesItemLineDetail"]["ItemRef"]["value"] for line in invoice["Line"]} == {"1"}
    # Every create carried a requestid, every call minorversion=75.
    for r in fake_qbo.requests:
        assert r.query.get("minorversion") == "75"
        if r.method == "POST":
            assert len(r.query["requestid"]) == 36
    found = await links(owner_engine, b.org_id)
    assert {k for k, _ in found} == {"customer", "invoice", "payment", "refund"}
    assert all(link.state == "synced" and link.qbo_id for link in found.values()), found
    assert found[("invoice", str(invoice_id))].sync_token is not None
    row = await connection_row(owner_engine, b.connection_id)
    assert row.last_sync_at is not None and row.error_count == 0

    # Cadence: the runner loops again at once: nothing is due, nothing is called.
    calls = len(fake_qbo.requests)
    assert await sync_due(runtime) == 0
    assert len(fake_qbo.requests) == calls
    # Once the interval has passed: claimed again; unchanged records cost no call but the look-up of the
    # company's service item (its lines' ItemRef, read once a pass) and the CDC read.
    await due_again(owner_engine, b.connection_id)
    assert await sync_due(runtime) == 1
    assert [r.path.rsplit("/", 1)[-1] for r in fake_qbo.requests[calls:]] == ["query", "cdc"]
    assert len(fake_qbo.all(REALM, "Customer")) == 1 and len(fake_qbo.all(REALM, "Invoice")) == 1


async def test_a_refund_waits_for_a_bank_account_in_quickbooks(
    owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    b = await books(owner_engine, qbo_settings)
    invoice_id = await issued_invoice(owner_engine, b)
    await pay(runtime, b, invoice_id, 12_500)
    await pay(runtime, b, invoice_id, 2_500, kind="refund")
    fake_qbo.company(REALM).objects["Account"].clear()
    fake_qbo.company(REALM).objects["Item"]["1"]["Name"] = "Cleaning"  # any active Service item will do
    await qbo_sync(slot=None)
    assert fake_qbo.all(REALM, "RefundReceipt") == [] and len(fake_qbo.all(REALM, "Payment")) == 1
    found = await links(owner_engine, b.org_id)
    [refund] = [link for (kind, _), link in found.items() if kind == "refund"]
    assert refund.state == "failed" and refund.error_code == "account"
    # The bookkeeper adds one in QuickBooks: the next pass pays the refund back from it.
    fake_qbo.add(REALM, "Account", Name="Savings", AccountType="Bank", Active=True)
    await due_again(owner_engine, b.connection_id)
    await qbo_sync(slot=None)
    [receipt] = fake_qbo.all(REALM, "RefundReceipt")
    assert receipt["TotalAmt"] == 25.0 and receipt["DepositToAccountRef"]["name"] == "Savings"
    assert len(fake_qbo.all(REALM, "Customer")) == 1


async def test_a_replayed_create_makes_one_customer(owner_engine, runtime, qbo_settings, fake_qbo) -> None:
    """A worker that died after QuickBooks created the objects but before we stored their ids:
    the next pass sends the same requestids and QuickBooks answers the first objects again."""
    b = await books(owner_engine, qbo_settings)
    await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    first = {(r.path, r.query["requestid"]) for r in fake_qbo.requests if r.method == "POST"}
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM qbo_links WHERE org_id = :o"), {"o": b.org_id})
        await conn.execute(text("DELETE FROM qbo_sync_cursors WHERE org_id = :o"), {"o": b.org_id})
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    again = {(r.path, r.query["requestid"]) for r in fake_qbo.requests if r.method == "POST"}
    assert again == first and len(fake_qbo.creates("customer")) == 2
    assert len(fake_qbo.all(REALM, "Customer")) == 1 and len(fake_qbo.all(REALM, "Invoice")) == 1
    found = await links(owner_engine, b.org_id)
    assert found[("customer", str(b.client_id))].qbo_id == fake_qbo.all(REALM, "Customer")[0]["Id"]


async def test_a_stale_sync_token_is_reread_and_retried_once(owner_engine, runtime, qbo_settings, fake_qbo) -> None:
    b = await books(owner_engine, qbo_settings)
    await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    [customer] = fake_qbo.all(REALM, "Customer")
    # A bookkeeper edits the customer in QuickBooks (its SyncToken moves on) ...
    fake_qbo.edit(REALM, "Customer", customer["Id"], Notes="VIP")
    # ... and the office renames the client here.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE client SET name = 'Ada Lovelace', updated_at = now() WHERE id = :c"), {"c": b.client_id}
        )
    calls = len(fake_qbo.requests)
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    tail = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in fake_qbo.requests[calls:]]
    assert tail[:3] == [("POST", "customer", 400), ("GET", customer["Id"], 200), ("POST", "customer", 200)], tail
    [after] = fake_qbo.all(REALM, "Customer")
    assert after["DisplayName"] == "Ada Lovelace" and after["Notes"] == "VIP"
    link = (await links(owner_engine, b.org_id))[("customer", str(b.client_id))]
    assert link.state == "synced" and link.sync_token == after["SyncToken"]


async def test_throttled_429_waits_for_retry_after(owner_engine, runtime, qbo_settings, fake_qbo) -> None:
    b = await books(owner_engine, qbo_settings)
    await issued_invoice(owner_engine, b)
    fake_qbo.throttle(2)
    started = time.monotonic()
    await sync_due(runtime)
    assert time.monotonic() - started >= 1.9  # twice Retry-After: 1
    assert [r.status for r in fake_qbo.requests[:3]] == [429, 429, 200]
    assert len(fake_qbo.all(REALM, "Customer")) == 1 and len(fake_qbo.all(REALM, "Invoice")) == 1
    assert (await connection_row(owner_engine, b.connection_id)).error_count == 0


async def test_throttled_too_long_fails_the_pass_and_retries_next_interval(
    owner_engine, runtime, qbo_settings, fake_qbo
) -> None:
    b = await books(owner_engine, qbo_settings)
    await issued_invoice(owner_engine, b)
    fake_qbo.throttle(4)
    await sync_due(runtime)
    row = await connection_row(owner_engine, b.connection_id)
    assert row.error_count == 1 and "throttl" in row.last_error and "access-token" not in row.last_error
    assert fake_qbo.all(REALM, "Customer") == []
    await asyncio.sleep(1.1)  # the realm's pause
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    assert len(fake_qbo.all(REALM, "Customer")) == 1
    assert (await connection_row(owner_engine, b.connection_id)).error_count == 0


async def test_the_limiter_keeps_the_realms_concurrency(runtime, fake_qbo) -> None:
    fake_qbo.delay = 0.15
    limiter = RealmLimiter(runtime.redis, concurrent=2, prefix="qbo:test-limit")

    async def token(force: bool) -> str:
        return "t"

    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        clients = [QboClient(http, fake_qbo.base_url, REALM, token, limiter) for _ in range(3)]
        await asyncio.gather(*(clients[i % 3].cdc(["Invoice"], _recent()) for i in range(6)))
    assert fake_qbo.max_in_flight == 2


def _recent():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)


async def test_a_needs_reconnect_connection_is_skipped(owner_engine, runtime, qbo_settings, fake_qbo) -> None:
    async with arrange(owner_engine) as db:
        from tests.support.factories.identity import new_org

        org = await new_org(db)
        await new_client(db, org.id)
    await connect(owner_engine, qbo_settings, org.id, "quickbooks", external_id=REALM, status="needs_reconnect")
    assert await sync_due(runtime) == 0
    assert fake_qbo.requests == []


async def test_an_invoice_number_used_in_quickbooks_is_reported_and_retried(
    owner_engine, runtime, qbo_settings, fake_qbo
) -> None:
    b = await books(owner_engine, qbo_settings)
    invoice_id = await issued_invoice(owner_engine, b, 7)
    other = fake_qbo.add(REALM, "Customer", DisplayName="Someone Else")
    taken = fake_qbo.add(REALM, "Invoice", DocNumber="INV-000007", CustomerRef={"value": other["Id"]}, Line=[])
    await sync_due(runtime)
    link = (await links(owner_engine, b.org_id))[("invoice", str(invoice_id))]
    assert link.state == "failed" and link.error_code == "6140" and "INV-000007" in link.last_error
    assert link.qbo_id is None and link.generation == 1
    assert len(fake_qbo.all(REALM, "Invoice")) == 1
    # Not retried by itself: the next pass leaves it as it is (no create).
    creates = len(fake_qbo.creates("invoice"))
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    assert len(fake_qbo.creates("invoice")) == creates
    # The bookkeeper removes theirs; a retry (the endpoint's job) pushes ours under a new requestid.
    fake_qbo.delete(REALM, "Invoice", taken["Id"])
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE qbo_links SET state = 'pending' WHERE id = :i"), {"i": link.id})
    await qbo_push_waiting(b.org_id, b.connection_id, REALM)
    link = (await links(owner_engine, b.org_id))[("invoice", str(invoice_id))]
    assert link.state == "synced" and link.error_code is None
    [ours] = fake_qbo.all(REALM, "Invoice")
    assert ours["DocNumber"] == "INV-000007" and ours["Id"] == link.qbo_id


async def test_an_invoice_paid_in_quickbooks_is_reported_as_differing(
    owner_engine, runtime, qbo_settings, fake_qbo
) -> None:
    b = await books(owner_engine, qbo_settings)
    invoice_id = await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    link = (await links(owner_engine, b.org_id))[("invoice", str(invoice_id))]
    assert link.state == "synced"
    # The bookkeeper records the payment in QuickBooks.
    customer = fake_qbo.all(REALM, "Customer")[0]
    fake_qbo.add(
        REALM,
        "Payment",
        CustomerRef={"value": customer["Id"]},
        TotalAmt=125.0,
        Line=[{"Amount": 125.0, "LinkedTxn": [{"TxnId": link.qbo_id, "TxnType": "Invoice"}]}],
    )
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    cdc = [r for r in fake_qbo.requests if r.path.endswith("/cdc")]
    assert "Invoice" in cdc[-1].query["entities"] and "Payment" in cdc[-1].query["entities"]
    link = (await links(owner_engine, b.org_id))[("invoice", str(invoice_id))]
    assert link.state == "differs"
    assert {d["field"]: (d["ours"], d["theirs"]) for d in link.differences} == {
        "open_cents": (12_500, 0),
        "status": ("open", "paid"),
    }
    # Nothing was written to our ledger: the office decides.
    async with owner_engine.connect() as conn:
        paid = await conn.scalar(text("SELECT paid_cents FROM invoices WHERE id = :i"), {"i": invoice_id})
        entries = await conn.scalar(
            text("SELECT count(*) FROM ledger_entries WHERE invoice_id = :i"), {"i": invoice_id}
        )
    assert paid == 0 and entries == 0
    # The office records the payment here (it is pushed) and the bookkeeper removes theirs: agreed again.
    await pay(runtime, b, invoice_id, 12_500)
    payment = fake_qbo.all(REALM, "Payment")[0]
    fake_qbo.delete(REALM, "Payment", payment["Id"])
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    found = await links(owner_engine, b.org_id)
    assert found[("invoice", str(invoice_id))].state == "synced", found[("invoice", str(invoice_id))].differences


async def test_the_first_pass_reads_no_further_back_than_the_cdc_window(
    owner_engine, runtime, qbo_settings, fake_qbo
) -> None:
    await books(owner_engine, qbo_settings)
    await sync_due(runtime)
    [cdc] = [r for r in fake_qbo.requests if r.path.endswith("/cdc")]
    assert cdc.status == 200
