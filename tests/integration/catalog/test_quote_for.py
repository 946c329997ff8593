"""quote_for: the stored catalogue, the organisation's tax and currency, and the frequency
discount, priced by the same function bookings use."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.catalog import services
from spotless.domain.catalog.pricing import QuoteParams
from spotless.domain.catalog.schemas import (
    AddonCreate,
    FrequencyDiscountsRead,
    FrequencyDiscountsUpdate,
    ServiceCreate,
    ServiceUpdate,
)
from spotless.lib.errors import Problem
from tests.support.factories import AppSessions, make_org

STANDARD = ServiceCreate(
    name="Standard clean",
    base_price_cents=8000,
    base_minutes=60,
    price_per_bedroom_cents=2000,
    minutes_per_bedroom=30,
    price_per_bathroom_cents=2500,
    minutes_per_bathroom=25,
)


async def test_quote_uses_org_tax_currency_and_frequency_discount(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org = await make_org(owner_engine, currency="CAD", tax_rate_bps=1200)
    async with app_sessions.scoped(org) as s:
        service = await services.create_service(s, org, STANDARD)
        oven = await services.create_addon(s, org, service.id, AddonCreate(name="Oven", price_cents=3000, minutes=30))
        windows = await services.create_addon(s, org, None, AddonCreate(name="Windows", price_cents=1500, minutes=20))
        await services.set_frequency_discounts(s, org, FrequencyDiscountsUpdate(weekly=1500, biweekly=1000))
    params = QuoteParams(bedrooms=2, bathrooms=1, addon_ids=(windows.id, oven.id), frequency="biweekly")
    async with app_sessions.scoped(org) as s:
        q = await services.quote_for(s, org, service.id, params)
    assert [li.kind for li in q.line_items] == ["base", "bedrooms", "bathrooms", "addon", "addon"]
    assert [li.addon_id for li in q.line_items[3:]] == [windows.id, oven.id]
    assert q.subtotal_cents == 8000 + 4000 + 2500 + 1500 + 3000
    assert q.discount_bps == 1000 and q.discount_cents == 1900
    assert q.tax_rate_bps == 1200 and q.tax_cents == 2052  # 12 % of 171.00
    assert q.total_cents == 17100 + 2052
    assert q.currency == "CAD"
    assert q.estimated_minutes == 60 + 60 + 25 + 20 + 30

    async with app_sessions.scoped(org) as s:
        once = await services.quote_for(s, org, service.id, QuoteParams(bedrooms=2, bathrooms=1))
        monthly = await services.quote_for(s, org, service.id, QuoteParams(frequency="monthly"))
    assert once.discount_cents == 0
    assert monthly.discount_bps == 0  # no monthly discount configured


async def test_discounts_can_be_replaced(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    org = await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        await services.set_frequency_discounts(s, org, FrequencyDiscountsUpdate(weekly=1500, monthly=500))
    async with app_sessions.scoped(org) as s:
        await services.set_frequency_discounts(s, org, FrequencyDiscountsUpdate(biweekly=700))
    async with app_sessions.scoped(org) as s:
        assert await services.get_frequency_discounts(s) == FrequencyDiscountsRead(weekly=0, biweekly=700, monthly=0)


async def test_bad_addons_are_named_in_a_400(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        service = await services.create_service(s, org, STANDARD)
        deep = await services.create_service(s, org, ServiceCreate(name="Deep clean", base_price_cents=20000))
        theirs = await services.create_addon(s, org, deep.id, AddonCreate(name="Walls", price_cents=100))
        retired = await services.create_addon(s, org, service.id, AddonCreate(name="Old", price_cents=100))
        await services.deactivate_addon(s, retired.id, service.id)
    async with app_sessions.scoped(other) as s:
        foreign = await services.create_addon(s, other, None, AddonCreate(name="Foreign", price_cents=100))

    cases = [
        ((uuid.uuid4(),), "addon_ids[0]"),
        ((theirs.id,), "addon_ids[0]"),
        ((retired.id,), "addon_ids[0]"),
        ((foreign.id,), "addon_ids[0]"),
    ]
    for addon_ids, field in cases:
        async with app_sessions.scoped(org) as s:
            with pytest.raises(Problem) as info:
                await services.quote_for(s, org, service.id, QuoteParams(addon_ids=addon_ids))
        assert info.value.status_code == 400
        assert info.value.extra["errors"][0]["field"] == field  # type: ignore[index]
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.quote_for(s, org, deep.id, QuoteParams(addon_ids=(theirs.id, theirs.id)))
    assert info.value.status_code == 400


async def test_inactive_service_is_409_and_foreign_service_404(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        service = await services.create_service(s, org, STANDARD)
        await services.update_service(s, service.id, ServiceUpdate(active=False))
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.quote_for(s, org, service.id, QuoteParams())
    assert (info.value.status_code, info.value.type_) == (409, "/problems/service-inactive")
    async with app_sessions.scoped(other) as s:
        with pytest.raises(Problem) as info:
            await services.quote_for(s, other, service.id, QuoteParams())
    assert info.value.status_code == 404


async def test_service_names_are_unique_per_org_case_insensitively(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    org, other = await make_org(owner_engine), await make_org(owner_engine)
    async with app_sessions.scoped(org) as s:
        await services.create_service(s, org, STANDARD)
    async with app_sessions.scoped(org) as s:
        with pytest.raises(Problem) as info:
            await services.create_service(s, org, ServiceCreate(name="standard  CLEAN"))
    assert info.value.status_code == 409
    async with app_sessions.scoped(other) as s:
        await services.create_service(s, other, STANDARD)
