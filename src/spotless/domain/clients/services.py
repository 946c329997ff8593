"""Client rules. Sessions reaching here are scoped to one organisation by row-level security, so a
row of another organisation simply is not found (404, never 403)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.events import ClientArchived
from spotless.domain.clients.models import Client, ClientAddress
from spotless.domain.clients.schemas import AddressCreate, AddressUpdate, ClientCreate, ClientRead, ClientUpdate
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.events import emit
from spotless.lib.labels import clean_labels
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.query import cursor_page, get_or_404
from spotless.lib.sql import Compiled


class ClientFilters(msgspec.Struct, kw_only=True, frozen=True):
    q: str | None = None
    tag: str | None = None
    blocked: bool | None = None
    # False (default): active clients only; True: archived only; None: both.
    archived: bool | None = False


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_condition(q: str) -> ColumnElement[bool] | None:
    term = q.strip()
    if not term:
        return None
    conditions: list[ColumnElement[bool]] = [
        Client.name.ilike(_like(term), escape="\\"),
        Client.email.ilike(_like(term), escape="\\"),
    ]
    digits = re.sub(r"\D", "", term)
    # Phones are typed every which way ("(604) 555-0101", "+1 604 555 0101"): compare digits only.
    if len(digits) >= 3:
        conditions.append(func.regexp_replace(Client.phone, r"\D", "", "g").like(_like(digits), escape="\\"))
    return or_(*conditions)


def _client_query(filters: ClientFilters) -> Select[Any]:
    stmt = select(Client)
    if filters.q and (cond := search_condition(filters.q)) is not None:
        stmt = stmt.where(cond)
    if filters.tag:
        stmt = stmt.where(Client.tags.contains([" ".join(filters.tag.split()).lower()]))
    if filters.blocked is not None:
        stmt = stmt.where(Client.blocked.is_(filters.blocked))
    if filters.archived is True:
        stmt = stmt.where(Client.archived_at.is_not(None))
    elif filters.archived is False:
        stmt = stmt.where(Client.archived_at.is_(None))
    return stmt


CLIENT_ORDER: Keyset[Client] = Keyset("clients", [Client.name, Client.id], [str, UUID], key=lambda c: (c.name, c.id))


async def list_clients(
    session: AsyncSession, org_id: UUID, filters: ClientFilters, *, limit: int, cursor: str | None = None
) -> CursorPage[ClientRead]:
    """By name, then id; a keyset page on (org_id, name, id), never a count or an offset. The
    organisation is named although RLS enforces it: the planner then walks that index in order."""
    stmt = _client_query(filters).where(Client.org_id == org_id)
    return await cursor_page(session, stmt, CLIENT_ORDER, cursor=cursor, limit=limit, to=ClientRead.from_model)


async def create_client(session: AsyncSession, org_id: UUID, data: ClientCreate) -> tuple[Client, list[ClientAddress]]:
    client = Client(
        org_id=org_id,
        name=data.name.strip() or data.name,
        email=data.email,
        phone=data.phone,
        notes=data.notes,
        tags=clean_labels(data.tags, "tags"),
        blocked=data.blocked,
        blocked_reason=data.blocked_reason if data.blocked else None,
    )
    session.add(client)
    await session.flush()
    addresses = [await create_address(session, org_id, client.id, address) for address in data.addresses]
    return client, addresses


async def get_client(session: AsyncSession, client_id: UUID) -> Client:
    return await get_or_404(session, Client, client_id, "client")


async def update_client(session: AsyncSession, client_id: UUID, patch: ClientUpdate) -> Client:
    client = await get_client(session, client_id)
    changes = msgspec.structs.asdict(patch)
    for field in ("name", "email", "phone", "notes"):
        if changes[field] is not msgspec.UNSET:
            setattr(client, field, changes[field])
    if patch.tags is not msgspec.UNSET:
        client.tags = clean_labels(patch.tags, "tags")
    if patch.blocked is not msgspec.UNSET:
        client.blocked = patch.blocked
        if not patch.blocked:
            client.blocked_reason = None
    if patch.blocked_reason is not msgspec.UNSET:
        client.blocked_reason = patch.blocked_reason if client.blocked else None
    if patch.archived is not msgspec.UNSET:
        was_archived = client.archived_at is not None
        client.archived_at = (client.archived_at or _now()) if patch.archived else None
        if client.archived_at is not None and not was_archived:
            _announce_archived(session, client, client.archived_at)
    await session.flush()
    return client


async def archive_client(session: AsyncSession, client_id: UUID) -> None:
    """Soft delete: history (bookings, invoices) keeps pointing at the client; idempotent."""
    client = await get_client(session, client_id)
    if client.archived_at is None:
        client.archived_at = _now()
        _announce_archived(session, client, client.archived_at)
        await session.flush()


async def client_archived_at(session: AsyncSession, client_id: UUID) -> datetime | None:
    """When the client was archived (None while active, or when not visible)."""
    return await session.scalar(select(Client.archived_at).where(Client.id == client_id))


async def client_contact(session: AsyncSession, client_id: UUID) -> tuple[str, str | None] | None:
    """A client's name and email; None when missing, archived or another organisation's."""
    row = (
        await session.execute(
            select(Client.name, Client.email).where(Client.id == client_id, Client.archived_at.is_(None))
        )
    ).first()
    return (row.name, row.email) if row is not None else None


def _announce_archived(session: AsyncSession, client: Client, at: datetime) -> None:
    emit(session, ClientArchived(org_id=client.org_id, client_id=client.id, archived_at=at))


# --- addresses ---------------------------------------------------------------------------------


async def list_addresses(
    session: AsyncSession, client_id: UUID, *, include_archived: bool = False
) -> list[ClientAddress]:
    await get_client(session, client_id)
    stmt = select(ClientAddress).where(ClientAddress.client_id == client_id)
    if not include_archived:
        stmt = stmt.where(ClientAddress.archived_at.is_(None))
    return list(await session.scalars(stmt.order_by(ClientAddress.created_at, ClientAddress.id)))


async def addresses_by_client(session: AsyncSession, client_ids: Sequence[UUID]) -> dict[UUID, list[ClientAddress]]:
    result: dict[UUID, list[ClientAddress]] = {cid: [] for cid in client_ids}
    if not client_ids:
        return result
    rows = await session.scalars(
        select(ClientAddress)
        .where(ClientAddress.client_id.in_(client_ids), ClientAddress.archived_at.is_(None))
        .order_by(ClientAddress.created_at, ClientAddress.id)
    )
    for address in rows:
        result[address.client_id].append(address)
    return result


async def create_address(session: AsyncSession, org_id: UUID, client_id: UUID, data: AddressCreate) -> ClientAddress:
    client = await get_client(session, client_id)
    if client.archived_at is not None:
        raise Problem(409, "client-archived", "The client is archived", "Restore the client before adding addresses.")
    fields = msgspec.structs.asdict(data)
    fields["country"] = data.country.upper()
    address = ClientAddress(org_id=org_id, client_id=client_id, **fields)
    session.add(address)
    await session.flush()
    return address


async def get_address(session: AsyncSession, client_id: UUID, address_id: UUID) -> ClientAddress:
    address = await get_or_404(session, ClientAddress, address_id, "address")
    if address.client_id != client_id:
        raise not_found("address")
    return address


async def update_address(
    session: AsyncSession, client_id: UUID, address_id: UUID, patch: AddressUpdate
) -> ClientAddress:
    address = await get_address(session, client_id, address_id)
    for field, value in msgspec.structs.asdict(patch).items():
        if value is msgspec.UNSET:
            continue
        if field in ("line1", "city", "country") and value is None:
            raise FieldError(field, f"{field} cannot be null")
        setattr(address, field, value.upper() if field == "country" else value)
    await session.flush()
    return address


async def archive_address(session: AsyncSession, client_id: UUID, address_id: UUID) -> None:
    address = await get_address(session, client_id, address_id)
    if address.archived_at is None:
        address.archived_at = _now()
        await session.flush()


# --- used by scheduling ------------------------------------------------------------------------


class BookableAddress(msgspec.Struct, frozen=True):
    """Where a new booking goes: the address, and what pricing takes from it by default."""

    id: UUID
    client_id: UUID
    country: str | None
    bedrooms: int | None
    bathrooms: int | None
    square_feet: int | None


# One statement, compiled once and run through asyncpg (lib.sql): a booking write reads it every time.
_BOOKABLE = Compiled(
    select(
        Client.archived_at,
        Client.blocked,
        Client.blocked_reason,
        ClientAddress.id.label("address_id"),
        ClientAddress.archived_at.label("address_archived_at"),
        ClientAddress.country,
        ClientAddress.bedrooms,
        ClientAddress.bathrooms,
        ClientAddress.square_feet,
    )
    .outerjoin(ClientAddress, and_(ClientAddress.client_id == Client.id, ClientAddress.id == bindparam("address_id")))
    .where(Client.id == bindparam("client_id"))
)


async def get_bookable_client(session: AsyncSession, client_id: UUID, address_id: UUID) -> BookableAddress:
    """The address a new booking of this client may use: 404 when the client or the address is
    missing, archived or another organisation's; 409 /problems/client-blocked when the client is blocked."""
    rows = await _BOOKABLE.rows(session, {"client_id": client_id, "address_id": address_id})
    if not rows or rows[0].archived_at is not None:
        raise not_found("client")
    row = rows[0]
    if row.address_id is None or row.address_archived_at is not None:
        raise not_found("address")
    if row.blocked:
        raise Problem(
            409,
            "client-blocked",
            "The client is blocked",
            "This client is blocked and cannot be booked" + (f": {row.blocked_reason}" if row.blocked_reason else "."),
            client_id=str(client_id),
        )
    return BookableAddress(
        id=row.address_id,
        client_id=client_id,
        country=row.country,
        bedrooms=row.bedrooms,
        bathrooms=row.bathrooms,
        square_feet=row.square_feet,
    )


def _now() -> datetime:
    return datetime.now(UTC)
