"""What other contexts may use of clients: who can be booked where, their addresses, and the
contact and address billing prints on an invoice."""

from __future__ import annotations

from dataclasses import dataclass
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


__all__ = [
    "BillingContact",
    "BookableAddress",
    "Client",
    "addresses_by_client",
    "billing_contact",
    "client_archived_at",
    "client_contact",
    "get_bookable_client",
]
