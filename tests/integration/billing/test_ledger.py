"""The ledger is the only source of what was paid: an entry keyed by an external id posts once
however many deliveries race, the invoice's paid/refunded amounts and status follow from its
entries, and the app role can never edit or delete an entry."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.domain.billing.ledger import Entry, derive_status, post
from spotless.domain.billing.models import Invoice, LedgerEntry
from tests.support.factories import arrange
from tests.support.factories.billing import BilledWorld, billed_world, new_invoice


async def _issued(owner_engine: AsyncEngine, world: BilledWorld, total: int = 10_000, number: int = 1) -> Invoice:
    async with arrange(owner_engine) as db:
        return await new_invoice(
            db, world.org_id, world.client_id, series="2026", number=number, status="issued", total_cents=total
        )


def _entry(world: BilledWorld, invoice: Invoice, kind: str, amount: int, **extra) -> Entry:
    return Entry(
        org_id=world.org_id,
        client_id=world.client_id,
        invoice_id=invoice.id,
        kind=kind,
        amount_cents=amount,
        source=extra.pop("source", "stripe"),
        **extra,
    )


async def _state(owner_engine: AsyncEngine, invoice: Invoice) -> tuple[str, int, int]:
    async with arrange(owner_engine) as db:
        row = (
            await db.execute(
                select(Invoice.status, Invoice.paid_cents, Invoice.refunded_cents).where(Invoice.id == invoice.id)
            )
        ).one()
    return row.status, row.paid_cents, row.refunded_cents


async def test_five_racing_posts_of_one_payment_pay_once(owner_engine: AsyncEngine, settings) -> None:
    world = await billed_world(owner_engine)
    invoice = await _issued(owner_engine, world, total=5_000)
    engine = create_engine(settings.database, application_name="ledger-test", pool_size=5, max_overflow=2)
    start = asyncio.Event()

    async def deliver() -> bool:
        await start.wait()
        async with session_factory(engine)() as session:
            bind_org(session, world.org_id)
            async with session.begin():
                return await post(
                    session, _entry(world, invoice, "payment", 5_000, method="card", external_id="pi_123")
                )

    try:
        tasks = [asyncio.create_task(deliver()) for _ in range(5)]
        await asyncio.sleep(0.05)
        start.set()
        results = await asyncio.gather(*tasks)
    finally:
        await engine.dispose()

    assert sorted(results) == [False, False, False, False, True]
    assert await _state(owner_engine, invoice) == ("paid", 5_000, 0)
    async with arrange(owner_engine) as db:
        count = await db.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.invoice_id == invoice.id)
        )
    assert count == 1


async def test_status_follows_payments_refunds_and_dispute_movements(owner_engine: AsyncEngine, app_sessions) -> None:
    world = await billed_world(owner_engine)
    invoice = await _issued(owner_engine, world, total=10_000)
    steps = [
        (_entry(world, invoice, "payment", 4_000, source="manual", method="cash"), ("partially_paid", 4_000, 0)),
        (_entry(world, invoice, "payment", 6_000, external_id="pi_1"), ("paid", 10_000, 0)),
        (_entry(world, invoice, "fee", 300, external_id="fee_1"), ("paid", 10_000, 0)),
        (_entry(world, invoice, "dispute_withdrawal", 6_000, external_id="dp_1"), ("partially_paid", 4_000, 0)),
        (_entry(world, invoice, "dispute_reinstatement", 6_000, external_id="dp_1"), ("paid", 10_000, 0)),
        (_entry(world, invoice, "refund", 2_500, external_id="re_1"), ("partially_refunded", 10_000, 2_500)),
        (_entry(world, invoice, "refund", 7_500, external_id="re_2"), ("refunded", 10_000, 10_000)),
    ]
    for entry, expected in steps:
        async with app_sessions.scoped(world.org_id) as session:
            assert await post(session, entry) is True
        assert await _state(owner_engine, invoice) == expected, entry


async def test_void_and_uncollectible_invoices_keep_their_status(owner_engine: AsyncEngine, app_sessions) -> None:
    world = await billed_world(owner_engine)
    invoice = await _issued(owner_engine, world, total=10_000)
    async with arrange(owner_engine) as db:
        await db.execute(text("UPDATE invoices SET status = 'uncollectible' WHERE id = :i"), {"i": invoice.id})
    async with app_sessions.scoped(world.org_id) as session:
        await post(session, _entry(world, invoice, "payment", 10_000, source="manual", method="cheque"))
    assert await _state(owner_engine, invoice) == ("uncollectible", 10_000, 0)


def test_derive_status_table() -> None:
    cases = [
        ("issued", 100, 0, 0, "issued"),
        ("issued", 100, 1, 0, "partially_paid"),
        ("partially_paid", 100, 100, 0, "paid"),
        ("paid", 100, 150, 0, "paid"),
        ("paid", 100, 100, 1, "partially_refunded"),
        ("partially_refunded", 100, 100, 100, "refunded"),
        # A refund on a partly paid invoice leaves the rest owed: still payable, overdue, chased.
        ("partially_paid", 100, 50, 10, "partially_paid"),
        ("partially_paid", 100, 50, 50, "partially_paid"),
        ("paid", 100, 0, 0, "issued"),
        ("draft", 100, 100, 0, "draft"),
        ("void", 100, 100, 0, "void"),
        ("uncollectible", 100, 0, 0, "uncollectible"),
    ]
    for current, total, paid, refunded, expected in cases:
        got = derive_status(current, total_cents=total, paid_cents=paid, refunded_cents=refunded)
        assert got == expected, (current, total, paid, refunded)


def test_an_entry_is_positive_and_of_a_known_kind() -> None:
    import uuid

    ids = {"org_id": uuid.uuid4(), "client_id": uuid.uuid4(), "source": "manual"}
    with pytest.raises(ValueError):
        Entry(kind="payment", amount_cents=0, **ids)
    with pytest.raises(ValueError):
        Entry(kind="gift", amount_cents=10, **ids)


async def test_the_app_role_cannot_edit_or_delete_an_entry(owner_engine: AsyncEngine, app_sessions) -> None:
    world = await billed_world(owner_engine)
    invoice = await _issued(owner_engine, world)
    async with app_sessions.scoped(world.org_id) as session:
        await post(session, _entry(world, invoice, "payment", 1_000, source="manual", method="cash"))
    for statement in ("UPDATE ledger_entries SET amount_cents = 1", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app_sessions.scoped(world.org_id) as session:
                await session.execute(text(statement))
    assert await _state(owner_engine, invoice) == ("partially_paid", 1_000, 0)
