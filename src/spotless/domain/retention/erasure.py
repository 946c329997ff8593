"""A client's erasure on request (the right to be forgotten), keeping what accounting law requires.

Personal fields are replaced by a tombstone: the client row (name, e-mail, phone, notes, tags,
blocked reason), its addresses, the notes of its bookings and series, and the snapshots invoices
keep of the client (name, e-mail, billing address). The client is archived; its bookings,
invoices and ledger entries stay, with their amounts untouched, pointing at the tombstone. Saved
cards are deactivated and detached from the Stripe customer (billing's own removal). Contexts
holding more about a client add their statements with `register_scrub` (messaging: its log's
addresses and wording, SMS consents).

Erasure is refused (409, listing what blocks it) while the client has open work: an unpaid
invoice, a visit still to come, an active recurring series, an export of their data still running. Cancelling those here would void
invoices and cancel visits behind the office's back, with their own side effects (credit notes,
cleaners' schedules, messages to the client); the office closes them with the tools made for
that, then erases. Erasing twice answers the first erasure (the register `client_erasures` holds
one row per client, append-only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.public import remove_client_cards
from spotless.domain.identity.public import Principal
from spotless.domain.retention.models import ClientErasure
from spotless.lib.errors import conflict, not_found
from spotless.settings import Settings

TOMBSTONE = "Erased client"
ERASED = "[erased]"
UNPAID = ("issued", "partially_paid")

_BLOCKERS = text(
    """
    SELECT 'unpaid_invoice' AS kind, id FROM invoices
     WHERE org_id = :org_id AND client_id = :client_id AND status IN ('issued', 'partially_paid')
    UNION ALL
    SELECT 'draft_invoice', id FROM invoices
     WHERE org_id = :org_id AND client_id = :client_id AND status = 'draft'
    UNION ALL
    SELECT 'future_booking', id FROM booking
     WHERE org_id = :org_id AND client_id = :client_id AND starts_at > now()
       AND status IN ('pending', 'confirmed', 'in_progress')
    UNION ALL
    SELECT 'in_progress_booking', id FROM booking
     WHERE org_id = :org_id AND client_id = :client_id AND starts_at <= now() AND status = 'in_progress'
    UNION ALL
    SELECT 'active_series', id FROM booking_series
     WHERE org_id = :org_id AND client_id = :client_id AND status = 'active'
    UNION ALL
    SELECT 'export_in_progress', id FROM exports
     WHERE org_id = :org_id AND subject_id = :client_id AND status IN ('queued', 'running')
    ORDER BY 1, 2
    LIMIT 100
    """
)

# Each statement runs inside the client's organisation (RLS) and names it as well.
_SCRUB: dict[str, str] = {
    "client": """UPDATE client SET name = :tombstone, email = NULL, phone = NULL, notes = NULL,
        tags = '{}', blocked_reason = NULL, archived_at = COALESCE(archived_at, now()), updated_at = now()
        WHERE org_id = :org_id AND id = :client_id""",
    "addresses": """UPDATE client_address SET label = NULL, line1 = :erased, line2 = NULL,
        city = :erased, region = NULL, postal_code = NULL, notes = NULL,
        archived_at = COALESCE(archived_at, now()), updated_at = now()
        WHERE org_id = :org_id AND client_id = :client_id""",
    "bookings": """UPDATE booking SET notes = NULL, updated_at = now()
        WHERE org_id = :org_id AND client_id = :client_id""",
    "series": """UPDATE booking_series SET notes = NULL, updated_at = now()
        WHERE org_id = :org_id AND client_id = :client_id""",
    # Amounts, numbers and lines stay (accounting law): only the copies of the client go.
    "invoices": """UPDATE invoices SET client_name = :tombstone, client_email = NULL, billing_address = NULL,
        updated_at = now() WHERE org_id = :org_id AND client_id = :client_id""",
    # Earlier exports of this client's data: expired now, so the exports sweep deletes their files.
    "data_exports": """UPDATE exports SET status = 'expired', updated_at = now()
        WHERE org_id = :org_id AND subject_id = :client_id AND status = 'succeeded'""",
}


def register_scrub(name: str, statement: str) -> None:
    """The hook for contexts holding a client's personal fields (messaging's log: `messages`): an
    UPDATE or DELETE naming `:org_id` and `:client_id` (`:tombstone` and `:erased` are there too),
    run in the erasure's transaction; its row count lands in the erasure's `counts[name]`."""
    _SCRUB.setdefault(name, statement)


async def client_exists(session: AsyncSession, org_id: UUID, client_id: UUID) -> bool:
    found = await session.scalar(
        text("SELECT id FROM client WHERE org_id = :org_id AND id = :client_id"),
        {"org_id": org_id, "client_id": client_id},
    )
    return found is not None


async def erasure_of(session: AsyncSession, client_id: UUID) -> ClientErasure | None:
    return await session.scalar(select(ClientErasure).where(ClientErasure.client_id == client_id))


async def erase_client(
    session: AsyncSession, principal: Principal, client_id: UUID, settings: Settings
) -> ClientErasure:
    params = {"org_id": principal.org_id, "client_id": client_id}
    # The client's row lock serialises two erasures (and an erasure with a new booking's insert).
    locked = await session.scalar(
        text("SELECT id FROM client WHERE org_id = :org_id AND id = :client_id FOR UPDATE"), params
    )
    if locked is None:
        raise not_found("client")
    done = await erasure_of(session, client_id)
    if done is not None:
        return done
    blockers = (await session.execute(_BLOCKERS, params)).all()
    if blockers:
        raise conflict(
            "client-has-open-work",
            "The client has open work: settle or void their invoices and cancel their visits and series first.",
            blockers=[{"kind": kind, "id": str(row_id)} for kind, row_id in blockers],
        )
    counts: dict[str, Any] = {}
    for name, statement in _SCRUB.items():
        result = await session.execute(text(statement), {**params, "tombstone": TOMBSTONE, "erased": ERASED})
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    counts["payment_methods"] = await remove_client_cards(session, principal, client_id, settings.stripe)
    erasure = ClientErasure(org_id=principal.org_id, client_id=client_id, erased_by=principal.user_id, counts=counts)
    session.add(erasure)
    await session.flush()
    record_audit(session, principal, "client.erase", "client", client_id, meta={"counts": counts})
    return erasure


def erased_at(erasure: ClientErasure) -> datetime:
    return erasure.created_at or datetime.now(UTC)
