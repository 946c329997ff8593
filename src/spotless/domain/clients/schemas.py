"""Request and response bodies for clients and their addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

# Postgres text cannot hold NUL: refuse it as a 400 here rather than fail in the driver.
TEXT = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT)]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
Phone = Annotated[str, Meta(min_length=3, max_length=40, pattern=r"^\+?[0-9 ().\-]{3,40}$")]
Notes = Annotated[str, Meta(max_length=5000, pattern=TEXT)]
Tag = Annotated[str, Meta(min_length=1, max_length=50, pattern=TEXT)]
Tags = Annotated[list[Tag], Meta(max_length=30)]
Reason = Annotated[str, Meta(max_length=500, pattern=TEXT)]
Country = Annotated[str, Meta(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]
Line = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT)]
Short = Annotated[str, Meta(max_length=100, pattern=TEXT)]
Postal = Annotated[str, Meta(max_length=20, pattern=TEXT)]
Rooms = Annotated[int, Meta(ge=0, le=100)]
Area = Annotated[int, Meta(ge=0, le=100_000)]


class AddressCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    line1: Line
    city: Annotated[str, Meta(min_length=1, max_length=100, pattern=TEXT)]
    country: Country
    label: Short | None = None
    line2: Line | None = None
    region: Short | None = None
    postal_code: Postal | None = None
    notes: Notes | None = None
    bedrooms: Rooms | None = None
    bathrooms: Rooms | None = None
    square_feet: Area | None = None


class AddressUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    line1: Line | UnsetType = UNSET
    city: Annotated[str, Meta(min_length=1, max_length=100, pattern=TEXT)] | UnsetType = UNSET
    country: Country | UnsetType = UNSET
    label: Short | UnsetType | None = UNSET
    line2: Line | UnsetType | None = UNSET
    region: Short | UnsetType | None = UNSET
    postal_code: Postal | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET
    bedrooms: Rooms | UnsetType | None = UNSET
    bathrooms: Rooms | UnsetType | None = UNSET
    square_feet: Area | UnsetType | None = UNSET


class AddressRead(msgspec.Struct, kw_only=True):
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


class ClientCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    notes: Notes | None = None
    tags: Tags = msgspec.field(default_factory=list)
    blocked: bool = False
    blocked_reason: Reason | None = None
    addresses: Annotated[list[AddressCreate], Meta(max_length=20)] = msgspec.field(default_factory=list)


class ClientUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: only the fields present change; `null` clears an optional field."""

    name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET
    blocked: bool | UnsetType = UNSET
    blocked_reason: Reason | UnsetType | None = UNSET
    # false restores an archived client; true archives (same as DELETE).
    archived: bool | UnsetType = UNSET


class ClientRead(msgspec.Struct, kw_only=True):
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
