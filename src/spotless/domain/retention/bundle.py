"""Everything we hold about one client, as a ZIP of JSON files (the `client_data` export kind).

One file per kind of record (profile, addresses, bookings, series, invoices with their lines,
payments from the ledger, saved cards without anything secret, and the messages log when the
messaging context registers one), each a JSON array streamed row by row into the archive. Every
query names the organisation and the client, and runs inside the export's organisation (RLS)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STREAM_BATCH = 500


@dataclass(frozen=True)
class Part:
    name: str
    sql: str  # selects the client's rows with :org_id and :client_id


PARTS: list[Part] = [
    Part(
        "profile.json",
        "SELECT id, name, email, phone, notes, tags, blocked, blocked_reason, archived_at, created_at, updated_at"
        " FROM client WHERE org_id = :org_id AND id = :client_id",
    ),
    Part(
        "addresses.json",
        "SELECT id, label, line1, line2, city, region, postal_code, country, notes, bedrooms, bathrooms,"
        " square_feet, archived_at, created_at FROM client_address WHERE org_id = :org_id AND client_id = :client_id"
        " ORDER BY created_at, id",
    ),
    Part(
        "bookings.json",
        "SELECT id, address_id, service_id, series_id, starts_at, ends_at, status, cancel_reason, frequency,"
        " total_cents, currency, notes, created_at FROM booking WHERE org_id = :org_id AND client_id = :client_id"
        " ORDER BY starts_at, id",
    ),
    Part(
        "series.json",
        "SELECT id, address_id, service_id, frequency, interval, start_time, timezone, anchor_date, until_date,"
        " status, notes, created_at FROM booking_series WHERE org_id = :org_id AND client_id = :client_id"
        " ORDER BY created_at, id",
    ),
    Part(
        "invoices.json",
        "SELECT i.id, i.display_number, i.kind, i.status, i.currency, i.issued_at, i.due_on, i.client_name,"
        " i.client_email, i.billing_address, i.subtotal_cents, i.tax_cents, i.total_cents, i.paid_cents,"
        " i.refunded_cents, i.voided_at,"
        " (SELECT COALESCE(jsonb_agg(jsonb_build_object('position', l.position, 'kind', l.kind,"
        "   'description', l.description, 'quantity', l.quantity, 'amount_cents', l.amount_cents)"
        "   ORDER BY l.position), '[]'::jsonb)"
        "  FROM invoice_lines l WHERE l.org_id = i.org_id AND l.invoice_id = i.id) AS lines"
        " FROM invoices i WHERE i.org_id = :org_id AND i.client_id = :client_id ORDER BY i.created_at, i.id",
    ),
    Part(
        "payments.json",
        "SELECT id, invoice_id, kind, amount_cents, method, reference, source, occurred_at FROM ledger_entries"
        " WHERE org_id = :org_id AND client_id = :client_id ORDER BY occurred_at, id",
    ),
    # The card's brand and last digits only: the card itself is at Stripe.
    Part(
        "payment_methods.json",
        "SELECT id, brand, last4, exp_month, exp_year, consent_at, active, created_at FROM payment_methods"
        " WHERE org_id = :org_id AND client_id = :client_id ORDER BY created_at, id",
    ),
]


def register_part(part: Part) -> None:
    """The hook for contexts that hold more about a client (messaging's log: `messages.json`)."""
    if all(p.name != part.name for p in PARTS):
        PARTS.append(part)


class Sink(Protocol):
    pending: bytearray

    def take(self) -> bytes: ...


async def bundle_rows(session: AsyncSession, org_id: UUID, client_id: UUID) -> int:
    total = 0
    for part in PARTS:
        total += int(
            await session.scalar(
                text(f"SELECT count(*) FROM ({part.sql}) AS part"),  # noqa: S608 (our text)
                {"org_id": org_id, "client_id": client_id},
            )
            or 0
        )
    return total


_encoder = msgspec.json.Encoder(decimal_format="number")


def _encode(row: Any) -> bytes:
    return _encoder.encode({key: value for key, value in row._mapping.items()})


async def bundle_chunks(
    session: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    count: Callable[[AsyncIterator[Sequence[Any]]], AsyncIterator[Sequence[Any]]],
    sink: Any,
) -> AsyncIterator[bytes]:
    import zipfile

    params = {"org_id": org_id, "client_id": client_id}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for part in PARTS:
            result = await session.stream(text(part.sql).execution_options(yield_per=STREAM_BATCH), params)
            with archive.open(part.name, "w", force_zip64=True) as entry:
                entry.write(b"[")
                first = True
                async for row in count(result):  # type: ignore[arg-type]
                    entry.write((b"" if first else b",\n") + _encode(row))
                    first = False
                    if len(sink.pending) >= 65_536:
                        yield sink.take()
                entry.write(b"]\n")
            yield sink.take()
    yield sink.take()
