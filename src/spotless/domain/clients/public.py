"""What other contexts may use of clients: who can be booked where, their addresses, the
contact and address billing prints on an invoice, and the facts an accounting integration
(QuickBooks) keeps of a customer (`clients_by_id`, `clients_changed_since`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.models import Client, ClientAddress
from spotless.domain.clients.services import (
    BookableAddress,
    addresses_by_client,
    client_archived_at,
    client_contact,
    get_bookable_client,
)


@dataclass(frozen=True)
class BillingContact:
    id: UUID
    name: str
    email: str | None
    # The address to print: the one asked for, else the client's first active one (None if none).
    address: dict[str, Any] | None


async def billing_contact(
    session: AsyncSession, client_id: UUID, address_id: UUID | None = None
) -> BillingContact | None:
    """The client's name, email and an address as plain data; None when the client is not visible."""
    client = (await session.execute(select(Client.id, Client.name, Client.email).where(Client.id == client_id))).first()
    if client is None:
        return None
    stmt = select(ClientAddress).where(ClientAddress.client_id == client_id)
    if address_id is not None:
        stmt = stmt.where(ClientAddress.id == address_id)
    else:
        stmt = stmt.where(ClientAddress.archived_at.is_(None)).order_by(ClientAddress.created_at, ClientAddress.id)
    address = (await session.scalars(stmt.limit(1))).first()
    printed = None
    if address is not None:
        printed = {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "region": address.region,
            "postal_code": address.postal_code,
            "country": address.country,
        }
    return BillingContact(id=client.id, name=client.name, email=client.email, address=printed)


@dataclass(frozen=True)
class ClientFacts:
    id: UUID
    name: str
    email: str | None
    phone: str | None
    archived: bool
    updated_at: datetime


_FACTS = (Client.id, Client.name, Client.email, Client.phone, Client.archived_at, Client.updated_at)


def _client_facts(row: Any) -> ClientFacts:
    return ClientFacts(
        id=row.id,
        name=row.name,
        email=str(row.email) if row.email else None,
        phone=row.phone,
        archived=row.archived_at is not None,
        updated_at=row.updated_at,
    )


async def clients_by_id(session: AsyncSession, ids: list[UUID]) -> dict[UUID, ClientFacts]:
    """The visible clients among `ids` (an erased or unknown one is simply absent)."""
    if not ids:
        return {}
    rows = await session.execute(select(*_FACTS).where(Client.id.in_(ids)))
    return {r.id: _client_facts(r) for r in rows}


async def clients_changed_since(
    session: AsyncSession, since: datetime, among: list[UUID] | None = None, limit: int = 1_000
) -> list[ClientFacts]:
    """Clients changed at or after `since` (only those in `among` when given), oldest change first."""
    stmt = select(*_FACTS).where(Client.updated_at >= since)
    if among is not None:
        if not among:
            return []
        stmt = stmt.where(Client.id.in_(among))
    rows = await session.execute(stmt.order_by(Client.updated_at, Client.id).limit(limit))
    return [_client_facts(r) for r in rows]


__all__ = [
    "BillingContact",
    "BookableAddress",
    "Client",
    "ClientFacts",
    "addresses_by_client",
    "billing_contact",
    "client_archived_at",
    "client_contact",
    "clients_by_id",
    "clients_changed_since",
    "get_bookable_client",
]
