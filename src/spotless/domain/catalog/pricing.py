"""The one price calculation: quotes and bookings both use `quote`, so a quoted price is the booked price.

Pure and deterministic: integer minor units and whole minutes only, every division rounded half up
at one documented place, line items in a fixed order (base, bedrooms, bathrooms or area, add-ons
in the order given)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, Protocol
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.lib.errors import FieldError

Frequency = Literal["once", "weekly", "biweekly", "monthly"]
LineKind = Literal["base", "bedrooms", "bathrooms", "square_feet", "addon"]
BPS = 10_000  # basis points in a whole


class PricedService(Protocol):
    id: UUID
    name: str
    pricing_mode: str
    base_price_cents: int
    base_minutes: int
    price_per_bedroom_cents: int
    minutes_per_bedroom: int
    price_per_bathroom_cents: int
    minutes_per_bathroom: int
    price_per_100_sqft_cents: int
    minutes_per_100_sqft: int


class PricedAddon(Protocol):
    id: UUID
    name: str
    price_cents: int
    minutes: int


class PricingParams(msgspec.Struct, frozen=True, kw_only=True):
    """The home being cleaned. Rooms-priced services read bedrooms/bathrooms, area-priced ones square_feet."""

    bedrooms: Annotated[int, Meta(ge=0, le=100)] = 0
    bathrooms: Annotated[int, Meta(ge=0, le=100)] = 0
    square_feet: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class QuoteParams(PricingParams, frozen=True, kw_only=True):
    """Everything a caller chooses for one visit besides the service: what `quote_for` takes."""

    addon_ids: Annotated[tuple[UUID, ...], Meta(max_length=50)] = ()
    frequency: Frequency = "once"


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    kind: LineKind
    description: str
    quantity: int
    # For `square_feet` lines the unit is 100 sq ft and `quantity` is in sq ft.
    unit_price_cents: int
    amount_cents: int
    minutes: int
    addon_id: UUID | None = None


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    service_id: UUID
    currency: str
    frequency: Frequency
    line_items: list[LineItem]
    subtotal_cents: int
    discount_bps: int
    discount_cents: int
    taxable_cents: int
    tax_rate_bps: int
    tax_cents: int
    total_cents: int
    estimated_minutes: int


def div_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero (for the non-negative amounts used here)."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("div_half_up expects a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def bps_of(amount_cents: int, bps: int) -> int:
    return div_half_up(amount_cents * bps, BPS)


def _check_bps(name: str, value: int) -> None:
    if not 0 <= value <= BPS:
        raise FieldError(name, f"{name} must be between 0 and {BPS} basis points")


def quote(
    service: PricedService,
    addons: Sequence[PricedAddon],
    params: PricingParams,
    frequency: Frequency | None = None,
    tax_rate_bps: int = 0,
    currency: str = "USD",
    *,
    discount_bps: int = 0,
) -> Quote:
    """Price one visit. `discount_bps` is the discount for `frequency` (the caller looks it up);
    tax applies to the discounted subtotal and is rounded half up once, on the total."""
    frequency = frequency or "once"
    if frequency == "once":
        discount_bps = 0
    _check_bps("discount_bps", discount_bps)
    _check_bps("tax_rate_bps", tax_rate_bps)
    if params.bedrooms < 0 or params.bathrooms < 0 or (params.square_feet or 0) < 0:
        raise FieldError("params", "bedrooms, bathrooms and square_feet cannot be negative")

    lines = [
        LineItem(
            kind="base",
            description=service.name,
            quantity=1,
            unit_price_cents=service.base_price_cents,
            amount_cents=service.base_price_cents,
            minutes=service.base_minutes,
        )
    ]
    if service.pricing_mode == "square_feet":
        if params.square_feet is None:
            raise FieldError("square_feet", "this service is priced by area: square_feet is required")
        if params.square_feet > 0:
            lines.append(
                LineItem(
                    kind="square_feet",
                    description=f"{params.square_feet} sq ft",
                    quantity=params.square_feet,
                    unit_price_cents=service.price_per_100_sqft_cents,
                    amount_cents=div_half_up(service.price_per_100_sqft_cents * params.square_feet, 100),
                    minutes=div_half_up(service.minutes_per_100_sqft * params.square_feet, 100),
                )
            )
    else:
        for kind, count, unit_price, unit_minutes in (
            ("bedrooms", params.bedrooms, service.price_per_bedroom_cents, service.minutes_per_bedroom),
            ("bathrooms", params.bathrooms, service.price_per_bathroom_cents, service.minutes_per_bathroom),
        ):
            if count > 0:
                lines.append(
                    LineItem(
                        kind=kind,  # type: ignore[arg-type]
                        description=f"{count} {kind if count != 1 else kind[:-1]}",
                        quantity=count,
                        unit_price_cents=unit_price,
                        amount_cents=unit_price * count,
                        minutes=unit_minutes * count,
                    )
                )
    for addon in addons:
        lines.append(
            LineItem(
                kind="addon",
                description=addon.name,
                quantity=1,
                unit_price_cents=addon.price_cents,
                amount_cents=addon.price_cents,
                minutes=addon.minutes,
                addon_id=addon.id,
            )
        )

    subtotal = sum(line.amount_cents for line in lines)
    discount = bps_of(subtotal, discount_bps)
    taxable = subtotal - discount
    tax = bps_of(taxable, tax_rate_bps)
    return Quote(
        service_id=service.id,
        currency=currency,
        frequency=frequency,
        line_items=lines,
        subtotal_cents=subtotal,
        discount_bps=discount_bps,
        discount_cents=discount,
        taxable_cents=taxable,
        tax_rate_bps=tax_rate_bps,
        tax_cents=tax,
        total_cents=taxable + tax,
        estimated_minutes=sum(line.minutes for line in lines),
    )
