"""Invoice numbers are gap-free and unique per organisation and series, even when many invoices
are issued at the same moment, and a rolled-back issue gives its number back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.domain.billing.models import Invoice
from spotless.domain.billing.numbering import display_number, take_number
from tests.support.factories import arrange, new_client
from tests.support.factories.billing import billed_world, new_invoice


async def _issue(factory, org_id: UUID, invoice_id: UUID, start: asyncio.Event) -> int:
    await start.wait()
    async with factory() as session:
        bind_org(session, org_id)
        async with session.begin():
            invoice = await session.get(Invoice, invoice_id, with_for_update=True)
            assert invoice is not None
            number = await take_number(session, org_id, "2026")
            invoice.series, invoice.number, invoice.status = "2026", number, "issued"
            invoice.display_number = display_number("INV", "2026", number)
            invoice.issued_at = datetime.now(UTC)
            # Hold the counter a moment: the others really queue behind this transaction.
            await session.execute(text("SELECT pg_sleep(0.01)"))
    return number


async def test_twenty_concurrent_issues_number_one_to_twenty(owner_engine: AsyncEngine, settings) -> None:
    world = await billed_world(owner_engine)
    async with arrange(owner_engine) as db:
        drafts = [await new_invoice(db, world.org_id, world.client_id) for _ in range(20)]
    engine = create_engine(settings.database, application_name="numbering-test", pool_size=20, max_overflow=5)
    try:
        factory = session_factory(engine)
        start = asyncio.Event()
        tasks = [asyncio.create_task(_issue(factory, world.org_id, d.id, start)) for d in drafts]
        await asyncio.sleep(0.1)
        start.set()
        numbers = await asyncio.gather(*tasks)
    finally:
        await engine.dispose()

    assert sorted(numbers) == list(range(1, 21))
    async with arrange(owner_engine) as db:
        rows = (
            await db.execute(select(Invoice.number, Invoice.display_number).where(Invoice.org_id == world.org_id))
        ).all()
        assert sorted(r.number for r in rows) == list(range(1, 21))
        assert {r.display_number for r in rows} == {f"INV-2026-{n:06d}" for n in range(1, 21)}
        next_number = await db.scalar(
            text("SELECT next_number FROM invoice_counters WHERE org_id = :o AND series = '2026'"),
            {"o": world.org_id},
        )
    assert next_number == 21


async def test_a_rolled_back_issue_leaves_no_gap(owner_engine: AsyncEngine, app_sessions) -> None:
    world = await billed_world(owner_engine)

    class Abort(Exception):
        pass

    async with app_sessions.scoped(world.org_id) as session:
        assert await take_number(session, world.org_id, "2026") == 1
    with pytest.raises(Abort):
        async with app_sessions.scoped(world.org_id) as session:
            assert await take_number(session, world.org_id, "2026") == 2
            raise Abort
    async with app_sessions.scoped(world.org_id) as session:
        assert await take_number(session, world.org_id, "2026") == 2


async def test_series_and_organisations_count_on_their_own(owner_engine: AsyncEngine, app_sessions) -> None:
    first = await billed_world(owner_engine)
    second = await billed_world(owner_engine)
    async with app_sessions.scoped(first.org_id) as session:
        assert [await take_number(session, first.org_id, "2026") for _ in range(3)] == [1, 2, 3]
        assert await take_number(session, first.org_id, "CN") == 1
    async with app_sessions.scoped(second.org_id) as session:
        assert await take_number(session, second.org_id, "2026") == 1
    assert display_number("INV", "CN", 7) == "INV-CN-000007"


async def test_the_database_refuses_a_number_twice_and_a_draft_with_one(owner_engine: AsyncEngine) -> None:
    world = await billed_world(owner_engine)
    async with arrange(owner_engine) as db:
        await new_invoice(db, world.org_id, world.client_id, series="2026", number=1, status="issued")
    with pytest.raises(IntegrityError, match="uq_invoices_org_id_series_number"):
        async with arrange(owner_engine) as db:
            await new_invoice(db, world.org_id, world.client_id, series="2026", number=1, status="issued")
    with pytest.raises(IntegrityError, match="number_iff_issued"):
        async with arrange(owner_engine) as db:
            await new_invoice(db, world.org_id, world.client_id, series="2026", number=2, status="draft")
    # Another organisation's invoice 1 is its own.
    other = await billed_world(owner_engine)
    async with arrange(owner_engine) as db:
        client = await new_client(db, other.org_id)
        await new_invoice(db, other.org_id, client.id, series="2026", number=1, status="issued")
