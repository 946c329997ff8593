"""The price calculation customers see on quotes and bookings: integer cents, half-up rounding,
discount before tax, minutes summed per line."""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
import pytest

from spotless.domain.catalog.pricing import PricingParams, div_half_up, quote
from spotless.lib.errors import Problem


class Svc(msgspec.Struct, kw_only=True):
    id: UUID = msgspec.field(default_factory=uuid4)
    name: str = "Standard clean"
    pricing_mode: str = "rooms"
    base_price_cents: int = 8000
    base_minutes: int = 60
    price_per_bedroom_cents: int = 2000
    minutes_per_bedroom: int = 30
    price_per_bathroom_cents: int = 2500
    minutes_per_bathroom: int = 25
    price_per_100_sqft_cents: int = 0
    minutes_per_100_sqft: int = 0


class Addon(msgspec.Struct, kw_only=True):
    id: UUID = msgspec.field(default_factory=uuid4)
    name: str
    price_cents: int
    minutes: int


def test_rooms_priced_breakdown_with_addons_discount_and_tax() -> None:
    oven = Addon(name="Inside oven", price_cents=3000, minutes=30)
    fridge = Addon(name="Inside fridge", price_cents=2500, minutes=20)
    q = quote(Svc(), [oven, fridge], PricingParams(bedrooms=3, bathrooms=2), "biweekly", 500, "CAD", discount_bps=1000)

    assert [(li.kind, li.quantity, li.amount_cents, li.minutes) for li in q.line_items] == [
        ("base", 1, 8000, 60),
        ("bedrooms", 3, 6000, 90),
        ("bathrooms", 2, 5000, 50),
        ("addon", 1, 3000, 30),
        ("addon", 1, 2500, 20),
    ]
    assert q.line_items[3].addon_id == oven.id
    assert q.subtotal_cents == 24500
    assert q.discount_cents == 2450  # 10 % of 245.00
    assert q.taxable_cents == 22050
    assert q.tax_cents == 1103  # 5 % of 220.50 = 11.025 -> half up
    assert q.total_cents == 23153
    assert q.estimated_minutes == 250
    assert q.currency == "CAD"
    assert q.frequency == "biweekly"


def test_same_input_same_quote_bytes() -> None:
    service, addon = Svc(), Addon(name="Windows", price_cents=999, minutes=15)
    params = PricingParams(bedrooms=2, bathrooms=1)
    first = msgspec.json.encode(quote(service, [addon], params, "weekly", 1300, "USD", discount_bps=1500))
    second = msgspec.json.encode(quote(service, [addon], params, "weekly", 1300, "USD", discount_bps=1500))
    assert first == second


def test_one_off_visit_gets_no_frequency_discount() -> None:
    q = quote(Svc(), [], PricingParams(bedrooms=1), "once", 0, "USD", discount_bps=2000)
    assert q.discount_bps == 0
    assert q.discount_cents == 0
    assert q.total_cents == 10000
    assert quote(Svc(), [], PricingParams(bedrooms=1), None, 0, "USD").frequency == "once"


@pytest.mark.parametrize(
    ("subtotal_base", "tax_bps", "expected_tax"),
    [
        (1000, 1250, 125),  # exact
        (1010, 1250, 126),  # 126.25 -> 126
        (1020, 1250, 128),  # 127.5 -> 128 (half up)
        (1, 5000, 1),  # 0.5 -> 1
        (1, 4999, 0),  # 0.4999 -> 0
        (0, 1500, 0),
    ],
)
def test_tax_rounds_half_up_once_on_the_discounted_subtotal(
    subtotal_base: int, tax_bps: int, expected_tax: int
) -> None:
    service = Svc(base_price_cents=subtotal_base, price_per_bedroom_cents=0)
    q = quote(service, [], PricingParams(), "once", tax_bps, "USD")
    assert q.tax_cents == expected_tax
    assert q.total_cents == subtotal_base + expected_tax


def test_discount_rounds_half_up_and_tax_follows_it() -> None:
    service = Svc(base_price_cents=1005, price_per_bedroom_cents=0)
    q = quote(service, [], PricingParams(), "monthly", 1000, "USD", discount_bps=1000)
    assert q.discount_cents == 101  # 100.5 -> 101
    assert q.taxable_cents == 904
    assert q.tax_cents == 90  # 90.4 -> 90
    assert q.total_cents == 994


def test_area_priced_service_rounds_area_share_half_up() -> None:
    service = Svc(
        pricing_mode="square_feet",
        base_price_cents=5000,
        base_minutes=30,
        price_per_100_sqft_cents=1250,
        minutes_per_100_sqft=9,
    )
    q = quote(service, [], PricingParams(square_feet=1850, bedrooms=9), "once", 0, "USD")
    area = q.line_items[1]
    assert (area.kind, area.quantity) == ("square_feet", 1850)
    assert area.amount_cents == 23125  # 12.50 * 18.5
    assert area.minutes == 167  # 9 * 18.5 = 166.5 -> 167
    assert [li.kind for li in q.line_items] == ["base", "square_feet"]  # bedrooms ignored
    assert q.total_cents == 28125
    assert q.estimated_minutes == 197


def test_area_priced_service_requires_square_feet() -> None:
    with pytest.raises(Problem) as info:
        quote(Svc(pricing_mode="square_feet"), [], PricingParams(bedrooms=2), "once", 0, "USD")
    assert info.value.status_code == 400
    assert info.value.extra["errors"][0]["field"] == "square_feet"  # type: ignore[index]


def test_zero_rooms_lines_are_left_out() -> None:
    q = quote(Svc(), [], PricingParams(bedrooms=0, bathrooms=1), "once", 0, "USD")
    assert [li.kind for li in q.line_items] == ["base", "bathrooms"]
    assert q.line_items[1].description == "1 bathroom"


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_rates_outside_zero_to_one_hundred_percent_are_refused(bps: int) -> None:
    with pytest.raises(Problem):
        quote(Svc(), [], PricingParams(), "weekly", bps, "USD")
    with pytest.raises(Problem):
        quote(Svc(), [], PricingParams(), "weekly", 0, "USD", discount_bps=bps)


def test_div_half_up() -> None:
    assert [div_half_up(n, 4) for n in range(9)] == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        div_half_up(-1, 2)
