"""Cross-organisation factories for the Stripe routes (tests/support/tenancy.py): an issued
invoice and a saved card, written below the API (only Stripe can make them otherwise)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from spotless.domain.billing.models import PaymentMethod
from spotless.settings import normalize_database_url
from tests.support.factories.billing import new_invoice
from tests.support.factories.clients import api_client_id
from tests.support.factories.db import add
from tests.support.tenancy import RESOURCE_FACTORIES, register


@asynccontextmanager
async def _admin() -> AsyncIterator[AsyncSession]:
    from tests.conftest import ADMIN_URL

    engine = create_async_engine(normalize_database_url(ADMIN_URL), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            yield db
    finally:
        await engine.dispose()


async def api_invoice_id(client: Any, member: Any) -> str:
    """An issued invoice of 100.00 for a new client of `member`'s organisation."""
    client_id = UUID(await api_client_id(client, member))
    async with _admin() as db:
        invoice = await new_invoice(
            db,
            member.org_id,
            client_id,
            status="issued",
            series="2026",
            number=secrets.randbelow(1_000_000_000) + 1,
            display_number="INV-2026-TEST",
        )
    return str(invoice.id)


async def api_method_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    """A saved card of the route's client (`client_id`)."""
    client_id = UUID(ids.get("client_id") or await api_client_id(client, member))
    async with _admin() as db:
        method = await add(
            db,
            PaymentMethod(
                org_id=member.org_id,
                client_id=client_id,
                stripe_payment_method_id=f"pm_test_{secrets.token_hex(12)}",
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2034,
                consent_text="test consent",
                active=True,
            ),
        )
    return str(method.id)


# The invoices' own factory (helper "core") wins when it exists: any invoice will do here.
if "invoice_id" not in RESOURCE_FACTORIES:
    register("invoice_id")(api_invoice_id)
register("method_id")(api_method_id)
