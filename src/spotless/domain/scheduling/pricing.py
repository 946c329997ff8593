"""What a booking costs: the catalogue's quote for the visit, snapshotted on the booking so later
price changes never touch it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import PricingParams, Quote, QuoteParams, quote_for
from spotless.domain.scheduling.context import OrgContext


def default_params(address: Any, params: PricingParams | None) -> PricingParams:
    """The caller's parameters, else the address's bedrooms, bathrooms and square feet."""
    if params is not None:
        return params
    return PricingParams(
        bedrooms=address.bedrooms or 0, bathrooms=address.bathrooms or 0, square_feet=address.square_feet
    )


def pricing_frequency(frequency: str, interval: int) -> str:
    """The catalogue's frequency discount that matches a series' rule (others are priced as one-offs)."""
    if frequency == "weekly" and interval in (1, 2):
        return "weekly" if interval == 1 else "biweekly"
    if frequency == "monthly" and interval == 1:
        return "monthly"
    return "once"


async def price(
    session: AsyncSession,
    ctx: OrgContext,
    service_id: UUID,
    params: PricingParams,
    addon_ids: Sequence[UUID],
    frequency: str,
) -> Quote:
    quote_params = QuoteParams(
        bedrooms=params.bedrooms,
        bathrooms=params.bathrooms,
        square_feet=params.square_feet,
        addon_ids=tuple(addon_ids),
        frequency=frequency,  # type: ignore[arg-type]
    )
    return await quote_for(session, ctx.org, service_id, quote_params)


def snapshot(quote: Quote) -> dict[str, Any]:
    return msgspec.to_builtins(quote)  # type: ignore[no-any-return]


def params_json(params: PricingParams) -> dict[str, Any]:
    return msgspec.to_builtins(params)  # type: ignore[no-any-return]
