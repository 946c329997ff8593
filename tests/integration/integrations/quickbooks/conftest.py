"""The QuickBooks sync against the fake QuickBooks Online API (tests/fakes/quickbooks.py) on
loopback: our client, limiter and jobs are the real ones; the settings point the API at the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.billing.public import Entry, post_entry
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.fakes.quickbooks import FakeQuickBooks
from tests.support.factories import arrange
from tests.support.factories.billing import new_invoice, new_invoice_line
from tests.support.factories.clients import new_client
from tests.support.factories.identity import new_org
from tests.support.integrations import connect

registry.import_jobs()

REALM = "9130354"


@pytest.fixture
def fake_qbo() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def qbo_settings(fake_qbo: FakeQuickBooks) -> Settings:
    return make_settings(
        QUICKBOOKS_OAUTH_CLIENT_ID="qbo-client",
        QUICKBOOKS_OAUTH_CLIENT_SECRET="qbo-secret",
        QBO_SYNC_INTERVAL_SECONDS="300",
        **fake_qbo.env(),
    )


@pytest.fixture
async def runtime(qbo_settings: Settings) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(qbo_settings, application_name="spotless-tests-quickbooks")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@dataclass
class Books:
    """An organisation with a QuickBooks connection and a client."""

    org_id: UUID
    connection_id: UUID
    client_id: UUID
    realm: str = REALM


async def books(
    owner_engine: AsyncEngine,
    settings: Settings,
    *,
    org_id: UUID | None = None,
    client_name: str = "Ada Client",
    **connection: Any,
) -> Books:
    async with arrange(owner_engine) as db:
        if org_id is None:
            org_id = (await new_org(db)).id
        client = await new_client(db, org_id, name=client_name)
    connection_id = await connect(owner_engine, settings, org_id, "quickbooks", external_id=REALM, **connection)
    return Books(org_id=org_id, connection_id=connection_id, client_id=client.id)


async def issued_invoice(
    owner_engine: AsyncEngine, b: Books, number: int = 1, *, total: int = 12_500, client_id: UUID | None = None
) -> UUID:
    async with arrange(owner_engine) as db:
        invoice = await new_invoice(
            db,
            b.org_id,
            client_id or b.client_id,
            status="issued",
            series="INV",
            number=number,
            display_number=f"INV-{number:06d}",
            subtotal_cents=total,
            total_cents=total,
            issued_at=datetime.now(UTC),
        )
        await new_invoice_line(db, invoice, amount_cents=total, unit_cents=total)
    return invoice.id


async def pay(rt: JobRuntime, b: Books, invoice_id: UUID, amount: int, kind: str = "payment") -> None:
    async with rt.session(b.org_id) as s:
        await post_entry(
            s,
            Entry(
                org_id=b.org_id,
                client_id=b.client_id,
                invoice_id=invoice_id,
                kind=kind,
                amount_cents=amount,
                method="etransfer",
                reference="ref-1",
                source="manual",
                occurred_at=datetime.now(UTC),
            ),
        )


async def links(owner_engine: AsyncEngine, org_id: UUID) -> dict[tuple[str, str], Any]:
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM qbo_links WHERE org_id = :o ORDER BY id"), {"o": org_id})).all()
    return {(r.kind, str(r.our_id)): r for r in rows}


async def due_again(owner_engine: AsyncEngine, connection_id: UUID) -> None:
    """The interval has passed (as if QBO_SYNC_INTERVAL_SECONDS went by)."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE integration_connections SET next_sync_at = now() - interval '1 second' WHERE id = :c"),
            {"c": connection_id},
        )
