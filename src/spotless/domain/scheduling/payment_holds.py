"""Payment holds: a client who owes money keeps their visits, but no cleaner is sent.

Billing asks for a hold when an unpaid invoice's follow-up reaches the step the organisation
chose (`billing.PaymentHoldRequested`), and lifts it when the invoice is settled
(`billing.PaymentHoldReleased`). A hold never cancels or moves anything: each visit not started
yet stays where it is, with its cleaners, marked `payment_hold` (visible to dispatch on the
bookings list, filtered with `payment_hold=true`); it is left off the cleaner's own job list and
cannot be started. Visits booked while the client is on hold are held from the start (the
database does it on insert: trigger `booking_payment_hold`, migration 0014).

A client may owe several invoices at once: each is one row of `client_payment_holds`, and their
visits are released only when the last one goes. Both calls are idempotent (a redelivered event
changes nothing) and take the client's hold lock, the one the insert trigger takes in share mode,
so a visit booked at the same moment is either seen by the hold or sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, exists, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.scheduling.events import ClientVisitsHeld, ClientVisitsReleased
from spotless.domain.scheduling.models import Booking, ClientPaymentHold
from spotless.domain.scheduling.series_edits import UNSTARTED
from spotless.lib.events import emit

# The advisory lock class of a client's payment hold (migration 0014's trigger takes it shared).
LOCK_CLASS = 714_012


async def lock_client(session: AsyncSession, client_id: UUID) -> None:
    """The client's hold lock, until the transaction ends (taken again by the same transaction
    at no cost)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:cls, hashtext(:client))"), {"cls": LOCK_CLASS, "client": str(client_id)}
    )


async def hold_client_visits(
    session: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    invoice_id: UUID,
    reason: str | None = None,
    *,
    now: datetime | None = None,
) -> list[UUID]:
    """Put the client's visits not started yet on payment hold because of `invoice_id`; returns
    the visits newly held (none when the client was already on hold)."""
    moment = now or datetime.now(UTC)
    await lock_client(session, client_id)
    await session.execute(
        insert(ClientPaymentHold)
        .values(
            id=uuid7(),
            org_id=org_id,
            client_id=client_id,
            invoice_id=invoice_id,
            reason=reason,
            created_at=moment,
            updated_at=moment,
        )
        .on_conflict_do_nothing(index_elements=["org_id", "client_id", "invoice_id"])
    )
    held = list(
        await session.scalars(
            update(Booking)
            .where(
                Booking.org_id == org_id,
                Booking.client_id == client_id,
                Booking.status.in_(UNSTARTED),
                Booking.payment_hold.is_(False),
            )
            .values(payment_hold=True, updated_at=moment)
            .returning(Booking.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    if held:
        emit(session, ClientVisitsHeld(org_id=org_id, client_id=client_id, invoice_id=invoice_id, booking_ids=held))
    return held


async def release_client_visits(
    session: AsyncSession, org_id: UUID, client_id: UUID, invoice_id: UUID, *, now: datetime | None = None
) -> list[UUID]:
    """Drop the hold `invoice_id` put on the client; when no other invoice holds them, their held
    visits go back to the field. Returns the visits released."""
    moment = now or datetime.now(UTC)
    await lock_client(session, client_id)
    await session.execute(
        delete(ClientPaymentHold).where(
            ClientPaymentHold.org_id == org_id,
            ClientPaymentHold.client_id == client_id,
            ClientPaymentHold.invoice_id == invoice_id,
        )
    )
    still = await session.scalar(
        select(exists().where(ClientPaymentHold.org_id == org_id, ClientPaymentHold.client_id == client_id))
    )
    if still:
        return []
    released = list(
        await session.scalars(
            update(Booking)
            .where(Booking.org_id == org_id, Booking.client_id == client_id, Booking.payment_hold.is_(True))
            .values(payment_hold=False, updated_at=moment)
            .returning(Booking.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    if released:
        emit(
            session,
            ClientVisitsReleased(org_id=org_id, client_id=client_id, invoice_id=invoice_id, booking_ids=released),
        )
    return released


async def client_hold_invoices(session: AsyncSession, client_id: UUID) -> list[UUID]:
    """The invoices that keep the client on payment hold (oldest first); empty when none does."""
    rows = await session.scalars(
        select(ClientPaymentHold.invoice_id)
        .where(ClientPaymentHold.client_id == client_id)
        .order_by(ClientPaymentHold.created_at, ClientPaymentHold.id)
    )
    return list(rows)


__all__ = ["LOCK_CLASS", "client_hold_invoices", "hold_client_visits", "lock_client", "release_client_visits"]
