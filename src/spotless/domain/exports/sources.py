"""What each export kind reads: read-only queries over the scheduling, clients and billing tables
(the exports context writes none of them), streamed from a server-side cursor in batches so a
million rows never sit in memory at once. Every query runs in the export's organisation (RLS) and
names `org_id` too, so the indexes that lead with it serve it.

A period is a pair of inclusive local dates in the organisation's zone: bounds are that zone's
midnights, so an export of March holds what happened in March where the business is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.exports.csvsafe import money

STREAM_BATCH = 500


@dataclass(frozen=True)
class Period:
    start: date | None
    end: date | None  # inclusive

    def params(self) -> dict[str, Any]:
        # No period (the whole client list): an open window.
        start = self.start or date(1, 1, 2)
        end = (self.end + timedelta(days=1)) if self.end else date(9999, 12, 30)
        return {"start": start, "end": end}


# Local midnights of the organisation's zone, as instants.
_WINDOW = """
    col >= (CAST(:start AS date)::timestamp AT TIME ZONE (SELECT timezone FROM organization WHERE id = :org_id))
    AND col < (CAST(:end AS date)::timestamp AT TIME ZONE (SELECT timezone FROM organization WHERE id = :org_id))
"""


def _window(column: str) -> str:
    return _WINDOW.replace("col", column)


@dataclass(frozen=True)
class Table:
    """One CSV: its header, the count of its rows and the rows themselves (same filter)."""

    name: str
    header: tuple[str, ...]
    select: str
    where: str
    order: str
    shape: Any  # row -> cells

    async def count(self, session: AsyncSession, org_id: UUID, period: Period) -> int:
        source = re.split(r"\s+FROM\s+", self.select, maxsplit=1)[1]
        sql = f"SELECT count(*) FROM {source} WHERE {self.where}"  # noqa: S608 (our text)
        return int(await session.scalar(text(sql), {"org_id": org_id, **period.params()}) or 0)

    async def rows(self, session: AsyncSession, org_id: UUID, period: Period) -> AsyncIterator[Sequence[Any]]:
        sql = f"{self.select} WHERE {self.where} ORDER BY {self.order}"
        result = await session.stream(
            text(sql).execution_options(yield_per=STREAM_BATCH), {"org_id": org_id, **period.params()}
        )
        async for row in result:
            yield self.shape(row)


BOOKINGS = Table(
    name="bookings.csv",
    header=(
        "booking_id", "starts_at", "ends_at", "status", "client_id", "client_name", "service",
        "frequency", "total", "currency", "estimated_minutes", "cancel_reason", "notes",
    ),
    select="""SELECT b.id, b.starts_at, b.ends_at, b.status, b.client_id, c.name AS client_name, s.name AS service,
                     b.frequency, b.total_cents, b.currency, b.estimated_minutes, b.cancel_reason, b.notes
              FROM booking b
              JOIN client c ON c.id = b.client_id AND c.org_id = b.org_id
              LEFT JOIN service s ON s.id = b.service_id AND s.org_id = b.org_id""",
    where="b.org_id = :org_id AND " + _window("b.starts_at"),
    order="b.starts_at, b.id",
    shape=lambda r: (
        r.id, r.starts_at, r.ends_at, r.status, r.client_id, r.client_name, r.service, r.frequency,
        money(r.total_cents), r.currency, r.estimated_minutes, r.cancel_reason, r.notes,
    ),
)  # fmt: skip

CLIENTS = Table(
    name="clients.csv",
    header=("client_id", "name", "email", "phone", "tags", "blocked", "archived_at", "created_at", "notes"),
    select="""SELECT c.id, c.name, c.email, c.phone, c.tags, c.blocked, c.archived_at, c.created_at, c.notes
              FROM client c""",
    where="c.org_id = :org_id AND " + _window("c.created_at"),
    order="c.created_at, c.id",
    shape=lambda r: (r.id, r.name, r.email, r.phone, r.tags, r.blocked, r.archived_at, r.created_at, r.notes),
)

INVOICES = Table(
    name="invoices.csv",
    header=(
        "invoice_id", "number", "kind", "credit_for", "status", "issued_at", "due_on", "client_id", "client_name",
        "tax_region", "currency", "subtotal", "tax", "total", "paid", "refunded", "balance", "voided_at",
    ),
    select="""SELECT i.id, i.display_number, i.kind, o.display_number AS credit_for, i.status, i.issued_at, i.due_on,
                     i.client_id, i.client_name, i.tax_region, i.currency, i.subtotal_cents, i.tax_cents,
                     i.total_cents, i.paid_cents, i.refunded_cents, i.voided_at
              FROM invoices i
              LEFT JOIN invoices o ON o.id = i.credit_for_id AND o.org_id = i.org_id""",
    # Issued documents only: a draft is not yet part of the books.
    where="i.org_id = :org_id AND i.issued_at IS NOT NULL AND " + _window("i.issued_at"),
    order="i.issued_at, i.id",
    shape=lambda r: (
        r.id, r.display_number, r.kind, r.credit_for, r.status, r.issued_at, r.due_on, r.client_id, r.client_name,
        r.tax_region, r.currency, money(r.subtotal_cents), money(r.tax_cents), money(r.total_cents),
        money(r.paid_cents), money(r.refunded_cents),
        money(r.total_cents - r.paid_cents + r.refunded_cents if r.status not in ("void", "uncollectible") else 0),
        r.voided_at,
    ),
)  # fmt: skip

# Money that moved in, positive, and out, negative: the ledger's sign by kind.
_OUTGOING = ("refund", "fee", "dispute_withdrawal", "credit_applied")

PAYMENTS = Table(
    name="payments.csv",
    header=(
        "entry_id", "occurred_at", "kind", "method", "source", "amount", "invoice_number", "client_id",
        "client_name", "reference",
    ),
    select="""SELECT l.id, l.occurred_at, l.kind, l.method, l.source, l.amount_cents, i.display_number,
                     l.client_id, c.name AS client_name, l.reference
              FROM ledger_entries l
              JOIN client c ON c.id = l.client_id AND c.org_id = l.org_id
              LEFT JOIN invoices i ON i.id = l.invoice_id AND i.org_id = l.org_id""",
    where="l.org_id = :org_id AND " + _window("l.occurred_at"),
    order="l.occurred_at, l.id",
    shape=lambda r: (
        r.id, r.occurred_at, r.kind, r.method, r.source,
        money(-r.amount_cents if r.kind in _OUTGOING else r.amount_cents),
        r.display_number, r.client_id, r.client_name, r.reference,
    ),
)  # fmt: skip

TABLES = {"bookings": BOOKINGS, "clients": CLIENTS, "invoices": INVOICES, "payments": PAYMENTS}

# The tax export: the summary per tax and rate (credit notes count against it), then the period's
# issued documents and its money movements.
TAX_SUMMARY_HEADER = ("tax", "rate_percent", "region", "taxable", "tax_collected", "documents")
_TAX_SUMMARY = f"""
    SELECT t.tax_name, t.tax_rate, i.tax_region,
           sum(CASE WHEN i.kind = 'credit_note' THEN -t.amount_cents ELSE t.amount_cents END) AS tax_cents,
           sum(CASE WHEN i.kind = 'credit_note' THEN -i.subtotal_cents ELSE i.subtotal_cents END) AS taxable_cents,
           count(DISTINCT i.id) AS documents
    FROM invoice_lines t
    JOIN invoices i ON i.id = t.invoice_id AND i.org_id = t.org_id
    WHERE t.org_id = :org_id AND t.kind = 'tax' AND i.issued_at IS NOT NULL AND i.status <> 'void'
      AND {_window("i.issued_at")}
    GROUP BY t.tax_name, t.tax_rate, i.tax_region
    ORDER BY t.tax_name, t.tax_rate, i.tax_region
"""  # noqa: S608 (our text)
TAX_TABLES = (INVOICES, PAYMENTS)


async def tax_summary(session: AsyncSession, org_id: UUID, period: Period) -> list[tuple[Any, ...]]:
    rows = (await session.execute(text(_TAX_SUMMARY), {"org_id": org_id, **period.params()})).all()
    return [
        (r.tax_name, r.tax_rate, r.tax_region, money(r.taxable_cents), money(r.tax_cents), r.documents) for r in rows
    ]
