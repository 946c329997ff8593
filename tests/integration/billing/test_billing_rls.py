"""Another organisation sees no row of any billing table, and cannot point at one."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.models import (
    BillingSettings,
    CheckoutSession,
    ClientCreditAccount,
    Dispute,
    Followup,
    FollowupStep,
    InvoiceCounter,
    InvoicedBooking,
    InvoiceLink,
    LedgerEntry,
    PaymentMethod,
    Refund,
    StripeAccount,
    StripeCustomer,
)
from tests.support.factories import add, arrange, new_booking
from tests.support.factories.billing import billed_world, new_invoice, new_invoice_line

BILLING_TENANT_TABLES = (
    "billing_settings",
    "invoice_counters",
    "invoices",
    "invoice_lines",
    "invoiced_bookings",
    "ledger_entries",
    "refunds",
    "disputes",
    "stripe_accounts",
    "stripe_customers",
    "checkout_sessions",
    "payment_methods",
    "invoice_links",
    "followups",
    "followup_steps",
    "client_credit_accounts",
)


async def _fill(owner_engine: AsyncEngine):
    world = await billed_world(owner_engine)
    now = datetime.now(UTC)
    o, c = world.org_id, world.client_id
    async with arrange(owner_engine) as db:
        invoice = await new_invoice(db, o, c, series="2026", number=1, status="issued")
        await new_invoice_line(db, invoice)
        booking = await new_booking(db, o, c, world.address_id, world.service_id, status="completed")
        await add(db, BillingSettings(org_id=o, invoicing_mode="per_visit"))
        await add(db, InvoiceCounter(org_id=o, series="2026", next_number=2))
        await add(db, InvoicedBooking(org_id=o, booking_id=booking.id, invoice_id=invoice.id))
        await add(
            db,
            LedgerEntry(
                org_id=o, client_id=c, invoice_id=invoice.id, kind="payment", amount_cents=100,
                source="manual", method="cash", occurred_at=now,
            ),
        )  # fmt: skip
        await add(db, Refund(org_id=o, invoice_id=invoice.id, amount_cents=100, status="pending"))
        await add(
            db,
            Dispute(
                org_id=o,
                invoice_id=invoice.id,
                stripe_dispute_id=f"dp_{o.hex}",
                status="needs_response",
                amount_cents=100,
            ),
        )
        await add(db, StripeAccount(org_id=o, account_id=f"acct_{o.hex}"))
        await add(db, StripeCustomer(org_id=o, client_id=c, customer_id=f"cus_{o.hex}"))
        await add(
            db,
            CheckoutSession(
                org_id=o, client_id=c, invoice_id=invoice.id, mode="payment", stripe_session_id=f"cs_{o.hex}"
            ),
        )
        await add(db, PaymentMethod(org_id=o, client_id=c, stripe_payment_method_id=f"pm_{o.hex}"))
        await add(
            db,
            InvoiceLink(
                org_id=o, invoice_id=invoice.id, token_hash=hashlib.sha256(os.urandom(32)).digest(),
                expires_at=now + timedelta(days=30),
            ),
        )  # fmt: skip
        followup = await add(
            db, Followup(org_id=o, invoice_id=invoice.id, client_id=c, reason="overdue", next_run_at=now)
        )
        await add(db, FollowupStep(org_id=o, followup_id=followup.id, step=1, ran_at=now))
        await add(db, ClientCreditAccount(org_id=o, client_id=c))
    return world, invoice


async def test_another_organisation_sees_no_billing_row(owner_engine: AsyncEngine, app_sessions) -> None:
    owner, _ = await _fill(owner_engine)
    other = await billed_world(owner_engine)
    async with app_sessions.scoped(owner.org_id) as session:
        for table in BILLING_TENANT_TABLES:
            assert (await session.scalar(text(f"SELECT count(*) FROM {table}"))) >= 1, table
    async with app_sessions.scoped(other.org_id) as session:
        for table in BILLING_TENANT_TABLES:
            assert (await session.scalar(text(f"SELECT count(*) FROM {table}"))) == 0, table


async def test_another_organisation_cannot_touch_or_reference_an_invoice(
    owner_engine: AsyncEngine, app_sessions
) -> None:
    _owner, invoice = await _fill(owner_engine)
    other = await billed_world(owner_engine)
    async with app_sessions.scoped(other.org_id) as session:
        changed = await session.execute(text("UPDATE invoices SET notes = 'mine' WHERE id = :i"), {"i": invoice.id})
        assert changed.rowcount == 0  # type: ignore[attr-defined]
    # A credit note of the other organisation pointing at this invoice: refused by the database.
    with pytest.raises(IntegrityError, match="fk_invoices_credit_for_id_invoices"):
        async with arrange(owner_engine) as db:
            await new_invoice(db, other.org_id, other.client_id, kind="credit_note", credit_for_id=invoice.id)


async def test_the_public_link_function_finds_only_a_live_link(owner_engine: AsyncEngine, app_sessions) -> None:
    world = await billed_world(owner_engine)
    now = datetime.now(UTC)
    live, expired, revoked = (hashlib.sha256(os.urandom(32)).digest() for _ in range(3))
    async with arrange(owner_engine) as db:
        invoice = await new_invoice(db, world.org_id, world.client_id, series="2026", number=1, status="issued")
        for token, expires, revoked_at in (
            (live, now + timedelta(days=1), None),
            (expired, now - timedelta(seconds=1), None),
            (revoked, now + timedelta(days=1), now),
        ):
            await add(
                db,
                InvoiceLink(
                    org_id=world.org_id,
                    invoice_id=invoice.id,
                    token_hash=token,
                    expires_at=expires,
                    revoked_at=revoked_at,
                ),
            )
    # No organisation bound: the function is the only way in.
    async with app_sessions.factory() as session, session.begin():
        assert (await session.scalar(text("SELECT count(*) FROM invoice_links"))) == 0
        found = (
            await session.execute(text("SELECT org_id, invoice_id FROM billing_invoice_link(:h)"), {"h": live})
        ).all()
        assert [(r.org_id, r.invoice_id) for r in found] == [(world.org_id, invoice.id)]
        for token in (expired, revoked, b"nope"):
            assert (await session.execute(text("SELECT * FROM billing_invoice_link(:h)"), {"h": token})).all() == []
