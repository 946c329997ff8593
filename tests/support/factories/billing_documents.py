"""Issued invoices as they print (lines, taxes, snapshots), and the cross-organisation factories
of the invoice routes: `invoice_id` (an issued invoice, written below the API until the invoice
routes exist), `link_id` and `token` (a public link, through the API)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from spotless.domain.billing.models import Invoice
from spotless.settings import normalize_database_url
from tests.support.factories._http import expect
from tests.support.factories.billing import new_invoice, new_invoice_line
from tests.support.factories.clients import new_client
from tests.support.factories.db import arrange
from tests.support.tenancy import RESOURCE_FACTORIES, register

GST_NUMBER = "123456789 RT0001"
QST_NUMBER = "1234567890 TQ0001"
RATES = {"GST": Decimal("5.000"), "HST": Decimal("13.000"), "QST": Decimal("9.975"), "PST": Decimal("7.000")}


async def new_issued_invoice(
    db: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    *,
    number: int | None = 1,
    items: tuple[tuple[str, int], ...] = (("Deep clean, 3 bedrooms", 200_00),),
    taxes: tuple[str, ...] = ("HST",),
    region: str = "ON",
    status: str = "issued",
    paid_cents: int = 0,
    registration: dict[str, Any] | None = None,
    **overrides: Any,
) -> Invoice:
    """An issued invoice with its lines and per-line taxes, numbered INV-2026-<number>."""
    subtotal = sum(amount for _, amount in items)
    tax_amounts = [
        (name, int((Decimal(subtotal) * RATES[name] / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
        for name in taxes
    ]
    tax = sum(amount for _, amount in tax_amounts)
    # Midday in Canada (17:00 UTC), so the local issue day is the UTC one whatever the zone.
    issued_at = datetime.now(UTC).replace(hour=17, minute=0, second=0, microsecond=0)
    fields: dict[str, Any] = {
        "series": "2026",
        "number": number,
        "display_number": f"INV-2026-{number:06d}" if number is not None else None,
        "status": status,
        "issued_at": issued_at,
        "due_on": issued_at.date() + timedelta(days=14),
        "tax_region": region,
        "client_name": "Ada Client",
        "client_email": "ada@example.com",
        "billing_address": {"line1": "1 Main St", "city": "Toronto", "region": region, "country": "CA"},
        "registration": registration if registration is not None else {"gst_hst_number": GST_NUMBER},
        "subtotal_cents": subtotal,
        "tax_cents": tax,
        "total_cents": subtotal + tax,
        "paid_cents": paid_cents,
    }
    fields.update(overrides)
    if fields["status"] == "draft":
        fields["issued_at"] = None  # a number exactly when issued (0013's ck_invoices_number_iff_issued)
    invoice = await new_invoice(db, org_id, client_id, **fields)
    position = 1
    for description, amount in items:
        await new_invoice_line(
            db, invoice, position=position, kind="service", description=description, unit_cents=amount,
            amount_cents=amount,
        )  # fmt: skip
        position += 1
    for name, amount in tax_amounts:
        await new_invoice_line(
            db, invoice, position=position, kind="tax", description=name, tax_name=name, tax_rate=RATES[name],
            unit_cents=amount, amount_cents=amount,
        )  # fmt: skip
        position += 1
    return invoice


def today() -> date:
    return datetime.now(UTC).date()


# --- cross-organisation factories ---------------------------------------------------------------


async def db_invoice_id(client: Any, member: Any) -> str:
    """An issued invoice of the member's organisation (no invoice route creates one yet)."""
    from tests.conftest import ADMIN_URL

    # As the owner_engine fixture does: the cluster admin (RLS is forced on the table owner too).
    engine = create_async_engine(normalize_database_url(ADMIN_URL), poolclass=NullPool)
    try:
        async with arrange(engine) as db:
            row = await new_client(db, member.org_id, name="Victim Client")
            invoice = await new_issued_invoice(db, member.org_id, row.id, number=_next_number(member.org_id))
            return str(invoice.id)
    finally:
        await engine.dispose()


_numbers: dict[UUID, int] = {}


def _next_number(org_id: UUID) -> int:
    _numbers[org_id] = _numbers.get(org_id, 0) + 1
    return _numbers[org_id]


# The invoice routes' own factory (through the API) takes precedence once it exists.
if "invoice_id" not in RESOURCE_FACTORIES:
    register("invoice_id")(db_invoice_id)


async def _link(client: Any, member: Any, ids: dict[str, str]) -> dict[str, Any]:
    invoice_id = ids.get("invoice_id") or await RESOURCE_FACTORIES["invoice_id"](client, member)
    url = f"/v1/invoices/{invoice_id}/links"
    response = await client.post(url, json={}, headers=member.headers)
    if response.status_code == 409 and response.json().get("invoice_status") == "draft":
        # The invoice routes' factory makes drafts: a link needs the invoice issued first.
        expect(await client.post(f"/v1/invoices/{invoice_id}/issue", headers=member.headers), 200, "issue invoice")
        response = await client.post(url, json={}, headers=member.headers)
    return expect(response, 201, "invoice link")


@register("link_id")
async def api_link_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    return str((await _link(client, member, ids))["id"])


@register("token")
async def api_link_token(client: Any, member: Any, ids: dict[str, str]) -> str:
    return str((await _link(client, member, ids))["token"])
