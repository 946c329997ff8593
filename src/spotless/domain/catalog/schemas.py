"""Request and response bodies for services, add-ons, frequency discounts and quotes, and the one
mapping of each model to its `XRead` (the price fields carry the organisation's currency)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from spotless.domain.catalog.models import FREQUENCIES, Service, ServiceAddon
from spotless.domain.catalog.pricing import QuoteParams
from spotless.lib.schema import UNSET, Bps, Input, Minutes, Money, Name, Output, Text, UnsetType

PricingMode = Literal["rooms", "square_feet"]


class ServiceCreate(Input):
    name: Name
    description: Text | None = None
    pricing_mode: PricingMode = "rooms"
    base_price_cents: Money = 0
    base_minutes: Minutes = 0
    price_per_bedroom_cents: Money = 0
    minutes_per_bedroom: Minutes = 0
    price_per_bathroom_cents: Money = 0
    minutes_per_bathroom: Minutes = 0
    price_per_100_sqft_cents: Money = 0
    minutes_per_100_sqft: Minutes = 0
    active: bool = True


class ServiceUpdate(Input):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    pricing_mode: PricingMode | UnsetType = UNSET
    base_price_cents: Money | UnsetType = UNSET
    base_minutes: Minutes | UnsetType = UNSET
    price_per_bedroom_cents: Money | UnsetType = UNSET
    minutes_per_bedroom: Minutes | UnsetType = UNSET
    price_per_bathroom_cents: Money | UnsetType = UNSET
    minutes_per_bathroom: Minutes | UnsetType = UNSET
    price_per_100_sqft_cents: Money | UnsetType = UNSET
    minutes_per_100_sqft: Minutes | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ServiceRead(Output):
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

    @classmethod
    def from_model(cls, service: Service, currency: str) -> ServiceRead:
        fields = {f: getattr(service, f) for f in cls.__struct_fields__ if f != "currency"}
        return cls(currency=currency, **fields)


class AddonCreate(Input):
    name: Name
    price_cents: Money = 0
    minutes: Minutes = 0
    active: bool = True


class AddonUpdate(Input):
    name: Name | UnsetType = UNSET
    price_cents: Money | UnsetType = UNSET
    minutes: Minutes | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class AddonRead(Output):
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

    @classmethod
    def from_model(cls, addon: ServiceAddon, currency: str) -> AddonRead:
        fields = {f: getattr(addon, f) for f in cls.__struct_fields__ if f != "currency"}
        return cls(currency=currency, **fields)


class FrequencyDiscountsUpdate(Input):
    """Discount on the subtotal of each visit of a recurring series, by frequency. The whole set
    is replaced: an omitted frequency gets 0 (no discount)."""

    weekly: Bps = 0
    biweekly: Bps = 0
    monthly: Bps = 0


class FrequencyDiscountsRead(Output):
    """Discount on the subtotal of each visit of a recurring series, by frequency (0 = none)."""

    weekly: Bps
    biweekly: Bps
    monthly: Bps

    @classmethod
    def from_values(cls, by_frequency: dict[str, int]) -> FrequencyDiscountsRead:
        """From stored (frequency, bps) pairs; a frequency never set reads as 0."""
        return cls(**{f: by_frequency.get(f, 0) for f in FREQUENCIES})


class QuoteRequest(QuoteParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    service_id: UUID
