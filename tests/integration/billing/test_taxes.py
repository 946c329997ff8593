"""Taxes come from the rate table by province and date, each line is taxed on its own and
rounded half-up to the cent, and the app can read the rates but never change them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.taxes import describe, line_tax, normalise_region, rates_for, tax_lines
from tests.support.factories.billing import billed_world


async def _rates(app_sessions, owner_engine: AsyncEngine, region: str, on: date):
    world = await billed_world(owner_engine)
    async with app_sessions.scoped(world.org_id) as session:
        return await rates_for(session, region, on)


async def test_quebec_charges_gst_and_qst_each_rounded_per_line(app_sessions, owner_engine: AsyncEngine) -> None:
    rates = await _rates(app_sessions, owner_engine, "QC", date(2026, 6, 1))
    assert [(r.name, r.rate) for r in rates] == [("GST", Decimal("5.000")), ("QST", Decimal("9.975"))]
    lines = tax_lines([1_990, 4_995], rates)
    # GST: 99.5 -> 100, 249.75 -> 250; QST: 198.5025 -> 199, 498.2513 -> 498.
    assert [(t.name, t.amount_cents) for t in lines] == [("GST", 350), ("QST", 697)]
    assert [describe(t) for t in lines] == ["GST 5%", "QST 9.975%"]
    assert all(t.rate_id for t in lines)


async def test_nova_scotia_hst_changes_on_april_first_2025(app_sessions, owner_engine: AsyncEngine) -> None:
    before = await _rates(app_sessions, owner_engine, "NS", date(2025, 3, 31))
    after = await _rates(app_sessions, owner_engine, "NS", date(2025, 4, 1))
    assert [(r.name, r.rate) for r in before] == [("HST", Decimal("15.000"))]
    assert [(r.name, r.rate) for r in after] == [("HST", Decimal("14.000"))]
    assert before[0].id != after[0].id
    assert tax_lines([10_000], before)[0].amount_cents == 1_500
    assert tax_lines([10_000], after)[0].amount_cents == 1_400


async def test_every_province_has_its_taxes(app_sessions, owner_engine: AsyncEngine) -> None:
    world = await billed_world(owner_engine)
    expected = {
        "AB": {"GST"}, "BC": {"GST", "PST"}, "MB": {"GST", "PST"}, "NB": {"HST"}, "NL": {"HST"},
        "NS": {"HST"}, "NT": {"GST"}, "NU": {"GST"}, "ON": {"HST"}, "PE": {"HST"}, "QC": {"GST", "QST"},
        "SK": {"GST", "PST"}, "YT": {"GST"},
    }  # fmt: skip
    async with app_sessions.scoped(world.org_id) as session:
        for region, names in expected.items():
            assert {r.name for r in await rates_for(session, region, date(2026, 1, 1))} == names, region
        assert await rates_for(session, "ON", date(2019, 12, 31)) == []
        assert await rates_for(session, "XX", date(2026, 1, 1)) == []


def test_half_up_rounding_per_line() -> None:
    assert line_tax(10, Decimal("5")) == 1  # 0.5 -> 1
    assert line_tax(9, Decimal("5")) == 0  # 0.45 -> 0
    assert line_tax(-10, Decimal("5")) == -1  # a discount's tax, away from zero
    assert line_tax(12_345, Decimal("13")) == 1_605  # 1604.85
    assert line_tax(100, Decimal("9.975")) == 10  # 9.975
    # Per line, not on the sum: three lines of 0.10 at 5 % are 3 cents, not round(1.5) = 2.
    assert tax_lines([10, 10, 10], [_rate("5")])[0].amount_cents == 3
    assert normalise_region(" qc ") == "QC" and normalise_region("Ontario") is None and normalise_region(None) is None


def _rate(percent: str):
    import uuid

    from spotless.domain.billing.taxes import Rate

    return Rate(id=uuid.uuid4(), region="ON", name="GST", rate=Decimal(percent))


async def test_the_app_role_reads_rates_but_never_changes_them(app_sessions, owner_engine: AsyncEngine) -> None:
    world = await billed_world(owner_engine)
    for statement in (
        "UPDATE tax_rates SET rate = 0",
        "DELETE FROM tax_rates",
        "INSERT INTO tax_rates (id, region, name, rate, effective_from, created_at, updated_at)"
        " VALUES (gen_random_uuid(), 'ON', 'PST', 1, '2020-01-01', now(), now())",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app_sessions.scoped(world.org_id) as session:
                await session.execute(text(statement))


async def test_windows_of_one_tax_never_overlap(owner_engine: AsyncEngine) -> None:
    with pytest.raises(DBAPIError, match="ex_tax_rates_overlap"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tax_rates (id, region, name, rate, effective_from, created_at, updated_at)"
                    " VALUES (gen_random_uuid(), 'NS', 'HST', 13, '2026-01-01', now(), now())"
                )
            )
