"""Automatic charges of a saved card: the `billing.charge_invoice` job and the auto-charge rule,
run as a worker runs them, with the fake Stripe at the far end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.charging import auto_charge, charge_invoice
from spotless.domain.billing.events import InvoiceIssued
from spotless.domain.billing.models import BillingSettings
from spotless.lib.events import SUBSCRIBERS
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.integration.billing.test_stripe_routes import (  # noqa: F401 (fixtures)
    Org,
    _save_card,
    api,
    connected_org,
    issued_invoice,
    stripe_settings,
)
from tests.support.client import Client
from tests.support.factories import AppSessions, arrange
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe  # noqa: F401


@pytest.fixture
async def runtime(stripe_settings: Settings) -> AsyncIterator[JobRuntime]:  # noqa: F811
    rt = build_runtime(stripe_settings, application_name="stripe-charging-test")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
def hearing_payment_failed() -> Iterator[None]:
    """Until the follow-up context subscribes, let `system.noop` hear PaymentFailed (to see it)."""
    names = SUBSCRIBERS.setdefault("billing.PaymentFailed", [])
    added = "system.noop" not in names
    if added:
        names.append("system.noop")
    yield
    if added:
        names.remove("system.noop")


async def _outbox(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(text("SELECT actor_name, args, kwargs FROM job_outbox ORDER BY id"))).all())


async def _card_org(api: Client, fake: FakeStripe, owner_engine: AsyncEngine, app_sessions: AppSessions) -> Org:  # noqa: F811
    org = await connected_org(api, fake, owner_engine)
    await _save_card(api, fake, org, app_sessions)
    return org


async def test_the_job_charges_the_saved_card_off_session_once(
    api: Client,  # noqa: F811
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
    runtime: JobRuntime,
) -> None:
    org = await _card_org(api, fake_stripe, owner_engine, app_sessions)
    invoice_id = await issued_invoice(owner_engine, org, total=8_000)

    await charge_invoice(org.owner.org_id, invoice_id, attempt=1)
    await charge_invoice(org.owner.org_id, invoice_id, attempt=1)  # a redelivered message

    (intent,) = fake_stripe.objects("payment_intent", org.account_id)
    assert (intent["amount"], intent["status"], intent["off_session"]) == (8_000, "succeeded", True)
    assert intent["metadata"]["invoice_id"] == str(invoice_id)
    (method,) = fake_stripe.objects("payment_method", org.account_id)
    assert intent["payment_method"] == method["id"]
    keys = {c.idempotency_key for c in fake_stripe.calls("POST", "/v1/payment_intents")}
    assert keys == {f"spotless:charge:{invoice_id}:1:8000"}
    async with owner_engine.connect() as conn:
        audited = await conn.scalar(
            text("SELECT count(*) FROM admin_audit_logs WHERE action = 'billing.card.charge' AND resource_id = :id"),
            {"id": str(invoice_id)},
        )
    assert audited == 2  # each run says what it did; Stripe charged once


async def test_a_declined_card_emits_payment_failed(
    api: Client,  # noqa: F811
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
    runtime: JobRuntime,
    hearing_payment_failed: None,
) -> None:
    org = await _card_org(api, fake_stripe, owner_engine, app_sessions)
    invoice_id = await issued_invoice(owner_engine, org, total=8_000)
    fake_stripe.decline_next_charge(decline_code="insufficient_funds")

    await charge_invoice(org.owner.org_id, invoice_id, attempt=1)

    # One outbox row per subscriber of the event: one event, whoever hears it.
    failed = [r for r in await _outbox(owner_engine) if r.args and r.args[0] == "billing.PaymentFailed"]
    assert len({r.args[1] for r in failed}) == 1
    payload = failed[0].args[2]
    assert (payload["invoice_id"], payload["client_id"], payload["reason"]) == (
        str(invoice_id),
        str(org.client_id),
        "insufficient_funds",
    )
    (intent,) = fake_stripe.objects("payment_intent", org.account_id)
    assert intent["status"] == "requires_payment_method"


async def test_nothing_is_charged_without_a_card_or_an_open_amount(
    api: Client,  # noqa: F811
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
    runtime: JobRuntime,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org)
    await charge_invoice(org.owner.org_id, invoice_id)  # no saved card
    async with arrange(owner_engine) as db:
        await db.execute(text("UPDATE invoices SET status = 'void' WHERE id = :id"), {"id": invoice_id})
    await _save_card(api, fake_stripe, org, app_sessions)
    await charge_invoice(org.owner.org_id, invoice_id)  # void
    assert fake_stripe.objects("payment_intent", org.account_id) == []


def _issued_event(org: Org, invoice_id: UUID) -> tuple[str, str, dict[str, Any]]:
    event = InvoiceIssued(org_id=org.owner.org_id, invoice_id=invoice_id, client_id=org.client_id, total_cents=8_000)
    return event.event_name, "evt-test", msgspec.to_builtins(event)


# on_completion charges invoices made from completed visits only: this one was made by hand.
@pytest.mark.parametrize(("mode", "charged"), [("off", False), ("on_issue", True), ("on_completion", False)])
async def test_auto_charge_follows_the_organisations_setting(
    api: Client,  # noqa: F811
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
    runtime: JobRuntime,
    mode: str,
    charged: bool,
) -> None:
    org = await _card_org(api, fake_stripe, owner_engine, app_sessions)
    invoice_id = await issued_invoice(owner_engine, org, total=8_000)
    async with arrange(owner_engine) as db:
        db.add(BillingSettings(org_id=org.owner.org_id, auto_charge=mode))

    await auto_charge(*_issued_event(org, invoice_id))

    jobs = [r for r in await _outbox(owner_engine) if r.actor_name == "billing.charge_invoice"]
    assert bool(jobs) is charged
    if charged:
        assert jobs[0].args == [str(org.owner.org_id), str(invoice_id)] and jobs[0].kwargs == {"attempt": 1}
