"""Billing rows below the API: invoices (draft unless told), their lines, and a whole billed world
(an organisation, a client with an address, a service) for the money tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.domain.billing.models import Invoice, InvoiceLine
from tests.support.factories.catalog import new_service
from tests.support.factories.clients import new_address, new_client
from tests.support.factories.db import add, arrange
from tests.support.factories.identity import new_org


async def new_invoice(db: AsyncSession, org_id: UUID, client_id: UUID, **overrides: Any) -> Invoice:
    """A draft of 100.00 (no lines) unless told otherwise. An issued one needs `number`."""
    fields: dict[str, Any] = {
        "series": "draft",
        "status": "draft",
        "currency": "CAD",
        "client_name": "Ada Client",
        "subtotal_cents": 10_000,
        "tax_cents": 0,
        "total_cents": 10_000,
    }
    fields.update(overrides)
    if fields["status"] != "draft" and "issued_at" not in fields:
        fields["issued_at"] = datetime.now(UTC)
    return await add(db, Invoice(org_id=org_id, client_id=client_id, **fields))


async def new_invoice_line(db: AsyncSession, invoice: Invoice, **overrides: Any) -> InvoiceLine:
    fields: dict[str, Any] = {
        "position": 1,
        "kind": "custom",
        "description": "Deep clean",
        "unit_cents": invoice.subtotal_cents,
        "amount_cents": invoice.subtotal_cents,
    }
    return await add(db, InvoiceLine(org_id=invoice.org_id, invoice_id=invoice.id, **{**fields, **overrides}))


@dataclass(frozen=True)
class BilledWorld:
    org_id: UUID
    client_id: UUID
    address_id: UUID
    service_id: UUID


async def billed_world(owner_engine: AsyncEngine, **org: Any) -> BilledWorld:
    async with arrange(owner_engine) as db:
        row = await new_org(db, **org)
        client = await new_client(db, row.id)
        address = await new_address(db, row.id, client.id)
        service = await new_service(db, row.id)
    return BilledWorld(org_id=row.id, client_id=client.id, address_id=address.id, service_id=service.id)
