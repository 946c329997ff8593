"""Request and response bodies for services, add-ons, frequency discounts and quotes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from spotless.domain.catalog.pricing import QuoteParams

# Postgres text cannot hold NUL: refuse it as a 400 here rather than fail in the driver.
TEXT = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT)]
Description = Annotated[str, Meta(max_length=5000, pattern=TEXT)]
# Caps (with at most 100 rooms, 100,000 sq ft and 50 add-ons) keep any quote's total far inside
# the 32-bit integer columns that snapshot it.
Cents = Annotated[int, Meta(ge=0, le=1_000_000, description="minor units of the organisation's currency")]
Minutes = Annotated[int, Meta(ge=0, le=24 * 60)]
Bps = Annotated[int, Meta(ge=0, le=10_000, description="basis points: 1000 = 10 %")]
PricingMode = Literal["rooms", "square_feet"]


class ServiceCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None
    pricing_mode: PricingMode = "rooms"
    base_price_cents: Cents = 0
    base_minutes: Minutes = 0
    price_per_bedroom_cents: Cents = 0
    minutes_per_bedroom: Minutes = 0
    price_per_bathroom_cents: Cents = 0
    minutes_per_bathroom: Minutes = 0
    price_per_100_sqft_cents: Cents = 0
    minutes_per_100_sqft: Minutes = 0
    active: bool = True


class ServiceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    pricing_mode: PricingMode | UnsetType = UNSET
    base_price_cents: Cents | UnsetType = UNSET
    base_minutes: Minutes | UnsetType = UNSET
    price_per_bedroom_cents: Cents | UnsetType = UNSET
    minutes_per_bedroom: Minutes | UnsetType = UNSET
    price_per_bathroom_cents: Cents | UnsetType = UNSET
    minutes_per_bathroom: Minutes | UnsetType = UNSET
    price_per_100_sqft_cents: Cents | UnsetType = UNSET
    minutes_per_100_sqft: Minutes | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ServiceRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str | None
    pricing_mode: str
    currency: str
    base_price_cents: int
    base_minutes: int
    price_per_bedroom_cents: int
    minutes_per_bedroom: int
    price_per_bathroom_cents: int
    minutes_per_bathroom: int
    price_per_100_sqft_cents: int
    minutes_per_100_sqft: int
    active: bool
    created_at: datetime
    updated_at: datetime


class AddonCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    price_cents: Cents = 0
    minutes: Minutes = 0
    active: bool = True


class AddonUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    price_cents: Cents | UnsetType = UNSET
    minutes: Minutes | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class AddonRead(msgspec.Struct, kw_only=True):
    id: UUID
    # null: offered with every service of the organisation.
    service_id: UUID | None
    name: str
    price_cents: int
    currency: str
    minutes: int
    active: bool
    created_at: datetime
    updated_at: datetime


class FrequencyDiscounts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Discount on the subtotal of each visit of a recurring series, by frequency (0 = none)."""

    weekly: Bps = 0
    biweekly: Bps = 0
    monthly: Bps = 0


class QuoteRequest(QuoteParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    service_id: UUID
