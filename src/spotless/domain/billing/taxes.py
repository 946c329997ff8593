"""Sales taxes: the rates in force in a region on a date, and per-line tax rounded half-up.

Each taxable line is taxed on its own (`line_tax`, rounded half-up to the cent, away from zero
for a discount); the invoice carries one tax line per tax (GST, QST ...) whose amount is the sum
of the lines' taxes and whose rate (and rate row) are snapshotted on it, so a later rate change
never alters an issued invoice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.models import TaxRate

# Canadian provinces and territories (the service address's province picks the taxes).
REGIONS = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Rate:
    id: UUID
    region: str
    name: str
    rate: Decimal  # percent, e.g. 9.975


@dataclass(frozen=True)
class TaxLine:
    name: str
    rate: Decimal
    rate_id: UUID
    amount_cents: int


def normalise_region(value: str | None) -> str | None:
    """'qc', ' QC ' -> 'QC'; anything not a known province -> None."""
    if not value:
        return None
    code = value.strip().upper()
    return code if code in REGIONS else None


async def rates_for(session: AsyncSession, region: str, on: date) -> list[Rate]:
    """The taxes in force in `region` on `on`, by name (GST before QST, HST alone ...)."""
    rows = (
        await session.execute(
            select(TaxRate.id, TaxRate.region, TaxRate.name, TaxRate.rate)
            .where(
                TaxRate.region == region,
                TaxRate.effective_from <= on,
                or_(TaxRate.effective_to.is_(None), TaxRate.effective_to >= on),
            )
            .order_by(TaxRate.name)
        )
    ).all()
    return [Rate(id=r.id, region=r.region, name=r.name, rate=Decimal(r.rate)) for r in rows]


def line_tax(amount_cents: int, rate: Decimal) -> int:
    """Tax on one line: `amount * rate %`, rounded half-up to the cent (a negative line's tax is
    negative, rounded the same way away from zero)."""
    return int((Decimal(amount_cents) * Decimal(rate) / _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tax_lines(amounts: Iterable[int], rates: Iterable[Rate]) -> list[TaxLine]:
    """One tax line per rate: the sum of each taxable line's own rounded tax."""
    amounts = list(amounts)
    out: list[TaxLine] = []
    for rate in rates:
        total = sum(line_tax(a, rate.rate) for a in amounts)
        out.append(TaxLine(name=rate.name, rate=rate.rate, rate_id=rate.id, amount_cents=total))
    return out


def describe(line: TaxLine) -> str:
    """'GST 5%', 'QST 9.975%' as printed on the invoice."""
    return f"{line.name} {line.rate.normalize():f}%"
