"""Gap-free invoice numbers per (organisation, series), taken when an invoice is issued.

The counter row is bumped by one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` inside the
issuing transaction: the row lock it takes serialises concurrent issuers of one series until they
commit, and a rolled-back issue gives its number back with its transaction. No number is ever
skipped or given twice (UNIQUE (org_id, series, number) backs that up)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.models import InvoiceCounter

CREDIT_NOTE_SERIES = "CN"


async def take_number(session: AsyncSession, org_id: UUID, series: str) -> int:
    """The next number of `series` for `org_id` (1 for the first), reserved by this transaction."""
    new = insert(InvoiceCounter).values(org_id=org_id, series=series, next_number=2)
    stmt = new.on_conflict_do_update(
        index_elements=[InvoiceCounter.org_id, InvoiceCounter.series],
        set_={"next_number": InvoiceCounter.next_number + 1, "updated_at": new.excluded.updated_at},
    ).returning(InvoiceCounter.next_number)
    next_number = (await session.execute(stmt)).scalar_one()
    return int(next_number) - 1


def display_number(prefix: str, series: str, number: int) -> str:
    """`INV-2026-000123` for an invoice; a credit note reads `CN-000007` (prefix in front if any)."""
    if series == CREDIT_NOTE_SERIES:
        return f"{prefix}-CN-{number:06d}" if prefix else f"CN-{number:06d}"
    return f"{prefix}-{series}-{number:06d}" if prefix else f"{series}-{number:06d}"
