"""/v1/clients and their addresses. Archive is DELETE (204, soft: history keeps the client);
PATCH {"archived": false} restores. Blocking is PATCH {"blocked": true, "blocked_reason": ...}."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients import services
from spotless.domain.clients.schemas import (
    AddressCreate,
    AddressRead,
    AddressUpdate,
    ClientCreate,
    ClientRead,
    ClientUpdate,
)
from spotless.domain.identity.public import Principal
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.schema import NO_NUL, Cursor, CursorPage, Limit

VIEW = {"permission": "contacts.view"}
EDIT = {"permission": "contacts.edit"}


class ClientController(Controller):
    path = "/v1/clients"
    tags = ["clients"]

    @post(operation_id="createClient", summary="Create a client (optionally with addresses)", opt=EDIT)
    async def create_client(self, db_session: AsyncSession, principal: Principal, data: ClientCreate) -> ClientRead:
        client, addresses = await services.create_client(db_session, principal.org_id, data)
        return ClientRead.from_model(client, addresses)

    @get(
        operation_id="listClients",
        summary="Search and filter clients, by name; page with `cursor` = the previous page's `next_cursor`",
        opt=VIEW,
    )
    async def list_clients(
        self,
        db_session: AsyncSession,
        principal: Principal,
        q: Annotated[
            str | None,
            Parameter(max_length=200, pattern=NO_NUL, description="matches name, email or phone digits"),
        ] = None,
        tag: Annotated[str | None, Parameter(max_length=50, pattern=NO_NUL)] = None,
        blocked: bool | None = None,
        include_archived: Annotated[bool, Parameter(description="also list archived clients")] = False,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CursorPage[ClientRead]:
        filters = services.ClientFilters(q=q, tag=tag, blocked=blocked, archived=None if include_archived else False)
        return await services.list_clients(db_session, principal.org_id, filters, limit=limit, cursor=cursor)

    @get("/{client_id:uuid}", operation_id="getClient", summary="A client with their active addresses", opt=VIEW)
    async def get_client(self, db_session: AsyncSession, client_id: UUID) -> ClientRead:
        client = await services.get_client(db_session, client_id)
        addresses = await services.list_addresses(db_session, client_id)
        return ClientRead.from_model(client, addresses)

    @patch(
        "/{client_id:uuid}",
        operation_id="updateClient",
        summary="Update a client: fields, tags, notes, block/unblock, restore",
        opt=EDIT,
    )
    async def update_client(self, db_session: AsyncSession, client_id: UUID, data: ClientUpdate) -> ClientRead:
        client = await services.update_client(db_session, client_id, data)
        return ClientRead.from_model(client)

    @delete("/{client_id:uuid}", operation_id="archiveClient", summary="Archive a client (soft, idempotent)", opt=EDIT)
    async def archive_client(self, db_session: AsyncSession, client_id: UUID) -> None:
        await services.archive_client(db_session, client_id)

    # --- addresses ---

    @get("/{client_id:uuid}/addresses", operation_id="listClientAddresses", summary="A client's addresses", opt=VIEW)
    async def list_addresses(
        self, db_session: AsyncSession, client_id: UUID, include_archived: bool = False
    ) -> list[AddressRead]:
        rows = await services.list_addresses(db_session, client_id, include_archived=include_archived)
        return [AddressRead.from_model(a) for a in rows]

    @post("/{client_id:uuid}/addresses", operation_id="createClientAddress", summary="Add a service address", opt=EDIT)
    async def create_address(
        self, db_session: AsyncSession, principal: Principal, client_id: UUID, data: AddressCreate
    ) -> AddressRead:
        return AddressRead.from_model(await services.create_address(db_session, principal.org_id, client_id, data))

    @get(
        "/{client_id:uuid}/addresses/{address_id:uuid}",
        operation_id="getClientAddress",
        summary="One address",
        opt=VIEW,
    )
    async def get_address(self, db_session: AsyncSession, client_id: UUID, address_id: UUID) -> AddressRead:
        return AddressRead.from_model(await services.get_address(db_session, client_id, address_id))

    @patch(
        "/{client_id:uuid}/addresses/{address_id:uuid}",
        operation_id="updateClientAddress",
        summary="Update an address",
        opt=EDIT,
    )
    async def update_address(
        self, db_session: AsyncSession, client_id: UUID, address_id: UUID, data: AddressUpdate
    ) -> AddressRead:
        return AddressRead.from_model(await services.update_address(db_session, client_id, address_id, data))

    @delete(
        "/{client_id:uuid}/addresses/{address_id:uuid}",
        operation_id="archiveClientAddress",
        summary="Archive an address (soft, idempotent)",
        opt=EDIT,
    )
    async def archive_address(self, db_session: AsyncSession, client_id: UUID, address_id: UUID) -> None:
        await services.archive_address(db_session, client_id, address_id)
