"""Client rules as the scheduling code and the API see them, on a real database under RLS."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.clients import services
from spotless.domain.clients.schemas import AddressCreate, ClientCreate, ClientUpdate
from spotless.lib.errors import Problem
from tests.support.factories import AppSessions, make_org

HOME = AddressCreate(line1="12 Elm St", city="Vancouver", country="ca", bedrooms=3, bathrooms=2)


async def test_bookable_client_returns_the_address_and_its_client(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org = await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        client, addresses = await services.create_client(s, org, ClientCreate(name="Ada", addresses=[HOME]))
    async with app_sessions.scoped(org) as s:
        address = await services.get_bookable_client(s, client.id, addresses[0].id)
    assert address.client_id == client.id
    assert (address.id, address.country, address.bedrooms) == (addresses[0].id, "CA", 3)


async def test_blocked_client_cannot_be_booked(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    org = await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        client, (address,) = await services.create_client(s, org, ClientCreate(name="Bob", addresses=[HOME]))
        await services.update_client(s, client.id, ClientUpdate(blocked=True, blocked_reason="unpaid invoices"))
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.get_bookable_client(s, client.id, address.id)
    assert info.value.status_code == 409
    assert info.value.type_ == "/problems/client-blocked"
    assert "unpaid invoices" in info.value.detail

    async with app_sessions.scoped(org) as s:
        await services.update_client(s, client.id, ClientUpdate(blocked=False))
    async with app_sessions.scoped(org) as s:
        await services.get_bookable_client(s, client.id, address.id)


async def test_archived_missing_or_foreign_client_and_address_are_not_found(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        client, (address,) = await services.create_client(s, org, ClientCreate(name="Cy", addresses=[HOME]))
        second, (second_address,) = await services.create_client(s, org, ClientCreate(name="Di", addresses=[HOME]))

    async def refused(org_id: uuid.UUID, client_id: uuid.UUID, address_id: uuid.UUID) -> Problem:
        async with app_sessions.scoped(org_id) as s:
            with pytest.raises(Problem) as info:
                await services.get_bookable_client(s, client_id, address_id)
        return info.value

    # Another organisation cannot see the client at all.
    assert (await refused(other, client.id, address.id)).status_code == 404
    # An address of a different client is not this client's address.
    assert (await refused(org, client.id, second_address.id)).status_code == 404
    assert (await refused(org, uuid.uuid4(), address.id)).status_code == 404

    async with app_sessions.scoped(org) as s:
        await services.archive_address(s, client.id, address.id)
        await services.archive_client(s, second.id)
    assert "address" in (await refused(org, client.id, address.id)).detail
    assert (await refused(org, second.id, second_address.id)).status_code == 404


async def test_search_matches_name_email_and_phone_digits_and_paginates(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org = await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        await services.create_client(
            s, org, ClientCreate(name="Alice Martin", email="alice@example.com", phone="(604) 555-0101")
        )
        await services.create_client(
            s, org, ClientCreate(name="Bruno Diaz", email="bd@corp.example", tags=["VIP", " vip "])
        )
        await services.create_client(s, org, ClientCreate(name="Carla 100%", phone="+1 778 555 0199"))
        for i in range(5):
            await services.create_client(s, org, ClientCreate(name=f"Zed {i}"))

    async def page(**kwargs: object) -> tuple[list[str], str | None, bool]:
        limit = int(kwargs.pop("limit", 50))  # type: ignore[call-overload]
        cursor = kwargs.pop("cursor", None)
        async with app_sessions.scoped(org) as s:
            found = await services.list_clients(
                s,
                org,
                services.ClientFilters(**kwargs),  # type: ignore[arg-type]
                limit=limit,
                cursor=cursor,  # type: ignore[arg-type]
            )
        return [r.name for r in found.items], found.next_cursor, found.has_more

    async def names(**kwargs: object) -> list[str]:
        return (await page(**kwargs))[0]

    assert await names(q="MARTIN") == ["Alice Martin"]
    assert await names(q="corp.example") == ["Bruno Diaz"]
    assert await names(q="604-555-0101") == ["Alice Martin"]
    assert await names(q="5550199") == ["Carla 100%"]
    assert await names(q="100%") == ["Carla 100%"]  # LIKE wildcards are literal
    assert await names(q="%") == ["Carla 100%"]
    assert await names(tag="vip") == ["Bruno Diaz"]
    first, cursor, more = await page(limit=3)
    assert (first, more) == (["Alice Martin", "Bruno Diaz", "Carla 100%"], True)
    second, cursor, more = await page(limit=3, cursor=cursor)
    assert (second, more) == (["Zed 0", "Zed 1", "Zed 2"], True)
    third, cursor, more = await page(limit=3, cursor=cursor)
    assert (third, cursor, more) == (["Zed 3", "Zed 4"], None, False)


async def test_tags_are_normalised_and_block_reason_follows_block(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org = await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        client, _ = await services.create_client(
            s, org, ClientCreate(name="Eve", tags=["Pets ", "pets", "Key  Safe"], blocked_reason="ignored")
        )
        assert client.tags == ["pets", "key safe"]
        assert client.blocked_reason is None
        await services.update_client(s, client.id, ClientUpdate(blocked=True, blocked_reason="rude"))
        await services.update_client(s, client.id, ClientUpdate(blocked=False))
        assert (client.blocked, client.blocked_reason) == (False, None)
