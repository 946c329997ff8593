"""Request and response bodies for clients and their addresses, and the one mapping of each model
to its `XRead`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.domain.clients.models import Client, ClientAddress
from spotless.lib.schema import (
    NO_NUL,
    UNSET,
    Email,
    Input,
    Labels,
    Name,
    Notes,
    Output,
    Phone,
    ShortText,
    UnsetType,
)

# Address and block-reason shapes only this context has (all refuse NUL, like the shared types).
Country = Annotated[str, Meta(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]
Line = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
City = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Postal = Annotated[str, Meta(max_length=20, pattern=NO_NUL)]
Rooms = Annotated[int, Meta(ge=0, le=100)]
Area = Annotated[int, Meta(ge=0, le=100_000)]
# Shorter than the shared `Reason` and may be empty: a block needs no explanation.
BlockedReason = Annotated[str, Meta(max_length=500, pattern=NO_NUL)]


class AddressCreate(Input):
    line1: Line
    city: City
    country: Country
    label: ShortText | None = None
    line2: Line | None = None
    region: ShortText | None = None
    postal_code: Postal | None = None
    notes: Notes | None = None
    bedrooms: Rooms | None = None
    bathrooms: Rooms | None = None
    square_feet: Area | None = None


class AddressUpdate(Input):
    line1: Line | UnsetType = UNSET
    city: City | UnsetType = UNSET
    country: Country | UnsetType = UNSET
    label: ShortText | UnsetType | None = UNSET
    line2: Line | UnsetType | None = UNSET
    region: ShortText | UnsetType | None = UNSET
    postal_code: Postal | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET
    bedrooms: Rooms | UnsetType | None = UNSET
    bathrooms: Rooms | UnsetType | None = UNSET
    square_feet: Area | UnsetType | None = UNSET


class AddressRead(Output):
    id: UUID
    client_id: UUID
    label: str | None
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str
    notes: str | None
    bedrooms: int | None
    bathrooms: int | None
    square_feet: int | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, address: ClientAddress) -> AddressRead:
        return msgspec.convert(address, cls, from_attributes=True)


class ClientCreate(Input):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    notes: Notes | None = None
    tags: Labels = msgspec.field(default_factory=list)
    blocked: bool = False
    blocked_reason: BlockedReason | None = None
    addresses: Annotated[list[AddressCreate], Meta(max_length=20)] = msgspec.field(default_factory=list)


class ClientUpdate(Input):
    """PATCH: only the fields present change; `null` clears an optional field."""

    name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET
    tags: Labels | UnsetType = UNSET
    blocked: bool | UnsetType = UNSET
    blocked_reason: BlockedReason | UnsetType | None = UNSET
    # false restores an archived client; true archives (same as DELETE).
    archived: bool | UnsetType = UNSET


class ClientRead(Output):
    id: UUID
    name: str
    email: str | None
    phone: str | None
    notes: str | None
    tags: list[str]
    blocked: bool
    blocked_reason: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    addresses: list[AddressRead] | UnsetType = UNSET

    @classmethod
    def from_model(cls, client: Client, addresses: list[ClientAddress] | None = None) -> ClientRead:
        """`addresses` is answered only where the caller loaded them (create, get)."""
        read = msgspec.convert(client, cls, from_attributes=True)
        if addresses is not None:
            read.addresses = [AddressRead.from_model(a) for a in addresses]
        return read
