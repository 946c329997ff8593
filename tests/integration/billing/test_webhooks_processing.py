"""Stripe events, delivered through the real endpoint and processed by the inbox job, against the
local fake Stripe: payments apply once whatever the delivery order and count, unmatched events are
answered and ignored, the account's status follows Stripe, and missed deliveries are recovered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from spotless.domain.billing.events import PaymentFailed
from spotless.domain.billing.recovery import recover, recover_stripe_events, type_batches
from spotless.lib.events import SUBSCRIBERS
from spotless.lib.inbox import process_inbox_event
from tests.support.stripe_webhooks import (
    connect_shop,
    deliver_event,
    inbox_rows,
    issued_invoice,
    open_checkout,
    rows,
    scalar,
)
from tests.support.stripe_world import *  # noqa: F403 (fixtures)

SEEN_BY = "system.noop"  # a declared job standing in for PaymentFailed's subscribers (never run here)


@pytest.fixture
def failures_heard() -> Iterator[None]:
    """PaymentFailed has no subscriber in this branch yet (the follow-up schedule will be one): an
    emit would write nothing. For one test, a stand-in hears it, so its outbox rows show each emit."""
    heard = SUBSCRIBERS.setdefault(PaymentFailed.event_name, [])
    heard.append(SEEN_BY)
    yield
    heard.remove(SEEN_BY)


def _ignored() -> float:
    return REGISTRY.get_sample_value("webhook_events_total", {"result": "ignored"}) or 0.0


async def _invoice(owner_engine, invoice_id):
    [row] = await rows(
        owner_engine,
        "SELECT status, paid_cents, refunded_cents, disputed FROM invoices WHERE id = :id",
        id=invoice_id,
    )
    return row


async def _ledger(owner_engine, invoice_id):
    return await rows(
        owner_engine,
        "SELECT kind, amount_cents, source, external_id FROM ledger_entries WHERE invoice_id = :id ORDER BY created_at",
        id=invoice_id,
    )


async def test_the_same_payment_delivered_five_times_concurrently_and_out_of_order_pays_once(
    api, fake_stripe, owner_engine, jobs
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=10_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id))
    completed = fake_stripe.last_event("checkout.session.completed", shop.account)
    succeeded = fake_stripe.last_event("payment_intent.succeeded", shop.account)
    # Stripe's order is succeeded, then completed; we get completed first, and each five times at once.
    answers = await asyncio.gather(*(deliver_event(api, fake_stripe, e) for e in [completed, succeeded] * 5))
    assert [a.status_code for a in answers] == [200] * 10
    assert len(await inbox_rows(owner_engine)) == 2

    # Both events' jobs at once, each also redelivered by the broker while the first runs.
    job_ids = await jobs.take()
    assert len(job_ids) == 2
    await asyncio.gather(*(_run(j) for j in [*reversed(job_ids), *job_ids, *job_ids]))

    pi = succeeded["data"]["object"]["id"]
    assert await _ledger(owner_engine, invoice_id) == [
        {"kind": "payment", "amount_cents": 10_000, "source": "stripe", "external_id": pi}
    ]
    invoice = await _invoice(owner_engine, invoice_id)
    assert (invoice["status"], invoice["paid_cents"]) == ("paid", 10_000)
    assert {r["outcome"] for r in await inbox_rows(owner_engine)} == {"processed"}
    # One line in the office's audit trail, by the system, for the one payment.
    trail = await rows(
        owner_engine,
        "SELECT actor_user_id, after FROM admin_audit_logs WHERE action = 'billing.payment.card' AND resource_id = :id",
        id=str(invoice_id),
    )
    assert len(trail) == 1 and trail[0]["actor_user_id"] is None
    assert trail[0]["after"]["amount_cents"] == 10_000 and trail[0]["after"]["status"] == "paid"
    assert await scalar(owner_engine, "SELECT status FROM checkout_sessions WHERE invoice_id = :id", id=invoice_id) in (
        None,
        "complete",
    )


async def _run(job_id: str) -> None:
    with contextlib.suppress(Exception):
        await process_inbox_event(job_id)


async def test_an_unpaid_completed_checkout_pays_only_when_the_async_payment_succeeds(
    api, fake_stripe, owner_engine, jobs
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=5_000)
    session_id = await open_checkout(fake_stripe, shop, invoice_id, amount_cents=5_000)
    fake_stripe.complete_session(session_id, payment_status="unpaid")  # a bank debit, still settling
    await deliver_event(api, fake_stripe, fake_stripe.last_event("checkout.session.completed", shop.account))
    await jobs.run()
    assert (await _invoice(owner_engine, invoice_id))["status"] == "issued"
    assert await _ledger(owner_engine, invoice_id) == []

    fake_stripe.settle_async_payment(session_id, succeeded=True)
    event = fake_stripe.last_event("checkout.session.async_payment_succeeded", shop.account)
    assert (await deliver_event(api, fake_stripe, event)).status_code == 200
    await jobs.run()
    invoice = await _invoice(owner_engine, invoice_id)
    assert (invoice["status"], invoice["paid_cents"]) == ("paid", 5_000)


async def test_a_failed_payment_is_told_once_and_never_pays(api, fake_stripe, owner_engine, jobs, failures_heard):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=5_000)
    session_id = await open_checkout(fake_stripe, shop, invoice_id, amount_cents=5_000)
    fake_stripe.complete_session(session_id, payment_status="unpaid")
    fake_stripe.settle_async_payment(session_id, succeeded=False)
    for kind in (
        "checkout.session.completed",
        "checkout.session.async_payment_failed",
        "payment_intent.payment_failed",
    ):
        for _ in range(2):
            await deliver_event(api, fake_stripe, fake_stripe.last_event(kind, shop.account))
    await jobs.run()
    assert await _ledger(owner_engine, invoice_id) == []
    assert (await _invoice(owner_engine, invoice_id))["status"] == "issued"
    [outbox] = await rows(owner_engine, "SELECT args FROM job_outbox WHERE actor_name = :j", j=SEEN_BY)
    payload = outbox["args"][2]
    assert (payload["invoice_id"], payload["client_id"]) == (str(invoice_id), str(shop.client_id))
    assert payload["reason"] == "payment_method_provider_decline"


async def test_an_event_we_cannot_match_is_answered_2xx_logged_and_counted_ignored(
    api, fake_stripe, owner_engine, jobs, caplog
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    before = _ignored()
    stranger = {
        "id": "evt_from_a_stranger",
        "object": "event",
        "type": "payment_intent.succeeded",
        "account": "acct_nobody_we_know",
        "created": 1,
        "data": {"object": {"id": "pi_nope", "object": "payment_intent", "status": "succeeded"}},
    }
    platform = {**stranger, "id": "evt_platform_only", "account": None}
    del platform["account"]
    unhandled = {**stranger, "id": "evt_unhandled", "type": "customer.created", "account": shop.account}
    for event in (stranger, platform, unhandled):
        answer = await deliver_event(api, fake_stripe, event)
        assert answer.status_code == 200, answer.text
    # An object of a known account without our invoice reference.
    foreign_pi = await _foreign_payment(fake_stripe, shop)
    await deliver_event(api, fake_stripe, fake_stripe.event_for("payment_intent.succeeded", foreign_pi))
    with caplog.at_level("INFO", logger="spotless.billing.stripe_events"):
        assert await jobs.run() == 4
    outcomes = {r["external_id"]: (r["outcome"], r["last_error"]) for r in await inbox_rows(owner_engine)}
    assert set(outcomes.values()) == {("ignored", None)}
    assert _ignored() - before == 4
    assert "acct_nobody_we_know" in caplog.text
    assert await scalar(owner_engine, "SELECT count(*) FROM ledger_entries") == 0


async def _foreign_payment(fake, shop) -> str:
    """A payment on the shop's account that is not one of our invoices (made in Stripe directly)."""
    from tests.support.stripe_webhooks import fake_call

    session = await fake_call(
        fake,
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "payment",
            "success_url": "http://localhost/x",
            "line_items": [{"quantity": 1, "price_data": {"currency": "cad", "unit_amount": 2_000}}],
        },
        account=shop.account,
    )
    return str(fake.complete_session(session["id"])["payment_intent"])


async def test_account_updated_brings_the_connection_status_up_to_date(api, fake_stripe, owner_engine, jobs):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    fake_stripe.update_account(shop.account, details_submitted=True)
    first = fake_stripe.last_event("account.updated", shop.account)
    fake_stripe.update_account(shop.account, charges_enabled=True, payouts_enabled=True)
    second = fake_stripe.last_event("account.updated", shop.account)
    for event in (second, first):  # the newer first: the re-read state wins, not the older snapshot
        await deliver_event(api, fake_stripe, event)
    await jobs.run()
    [account] = await rows(
        owner_engine,
        "SELECT status, charges_enabled, payouts_enabled, details_submitted FROM stripe_accounts WHERE org_id = :o",
        o=shop.org_id,
    )
    assert account == {"status": "active", "charges_enabled": True, "payouts_enabled": True, "details_submitted": True}


async def test_missed_deliveries_are_recovered_from_stripe_and_processed_once(
    api, fake_stripe, owner_engine, jobs, runtime
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=7_500)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=7_500))
    # We were down: nothing was delivered. The job asks Stripe for what it could not deliver.
    totals = await recover(runtime)
    assert totals["accounts"] == 1 and totals["failed"] == 0
    stored = {r["event_type"] for r in await inbox_rows(owner_engine)}
    assert {"checkout.session.completed", "payment_intent.succeeded"} <= stored
    assert "charge.succeeded" not in stored  # only the types we handle are asked for
    listing = fake_stripe.calls("GET", "/v1/events")
    assert listing and all(c.params.get("delivery_success") in ("false", False) for c in listing)
    await jobs.run()
    invoice = await _invoice(owner_engine, invoice_id)
    assert (invoice["status"], invoice["paid_cents"]) == ("paid", 7_500)

    # Stripe's own retry arrives after all, and the next recovery run lists the same events: once.
    late = await deliver_event(api, fake_stripe, fake_stripe.last_event("payment_intent.succeeded", shop.account))
    assert late.json()["duplicate"] is True
    again = await recover(runtime)
    assert again["stored"] == 0 and again["listed"] == totals["listed"]
    assert await jobs.run() == 0
    assert len(await _ledger(owner_engine, invoice_id)) == 1


async def test_the_recovery_job_runs_once_per_slot(api, fake_stripe, owner_engine, runtime):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=2_500)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=2_500))
    slot = "2026-12-01T23:30:00+00:00"
    await recover_stripe_events(slot=slot)
    listed = len(fake_stripe.calls("GET", "/v1/events"))
    assert listed >= 1 and len(await inbox_rows(owner_engine)) >= 2
    await recover_stripe_events(slot=slot)  # the same slot delivered again: done already
    assert len(fake_stripe.calls("GET", "/v1/events")) == listed


def test_recovery_asks_for_at_most_20_types_per_call():
    batches = type_batches(tuple(f"type.{i}" for i in range(45)))
    assert [len(b) for b in batches] == [20, 20, 5]
    assert all(len(b) <= 20 for b in type_batches())


async def test_a_completed_setup_session_saves_the_card_once(api, fake_stripe, owner_engine, jobs):
    from spotless.domain.billing.models import CheckoutSession
    from tests.support.factories import add, arrange
    from tests.support.stripe_webhooks import fake_call

    shop = await connect_shop(api, owner_engine, fake_stripe)
    created = await fake_call(
        fake_stripe,
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "setup",
            "currency": "cad",
            "success_url": "http://localhost/saved",
            "metadata": {"consent_text": "OK"},
        },
        account=shop.account,
    )
    async with arrange(owner_engine) as db:
        await add(
            db,
            CheckoutSession(
                org_id=shop.org_id,
                client_id=shop.client_id,
                mode="setup",
                stripe_session_id=created["id"],
                status="open",
            ),
        )
    fake_stripe.complete_session(created["id"])
    event = fake_stripe.last_event("checkout.session.completed", shop.account)
    await asyncio.gather(*(deliver_event(api, fake_stripe, event) for _ in range(3)))
    await jobs.run()
    cards = await rows(
        owner_engine,
        "SELECT brand, last4, active, consent_text FROM payment_methods WHERE client_id = :c",
        c=shop.client_id,
    )
    assert cards == [{"brand": "visa", "last4": "4242", "active": True, "consent_text": "OK"}]
    assert (
        await scalar(owner_engine, "SELECT status FROM checkout_sessions WHERE stripe_session_id = :s", s=created["id"])
        == "complete"
    )


async def test_recovery_continues_past_its_page_cap_then_lists_only_stripes_retry_window(
    api, fake_stripe, owner_engine, jobs, runtime, monkeypatch
):
    """A cycle that hits its page cap goes on from where it stopped next run (never the newest
    again), and once complete, the next cycle asks only for events since three days before it."""
    import spotless.domain.billing.recovery as recovery

    monkeypatch.setattr(recovery, "PAGE_SIZE", 1)
    monkeypatch.setattr(recovery, "MAX_PAGES", 1)
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=7_500)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=7_500))
    undelivered = [
        e["id"]
        for e in fake_stripe.events(shop.account)
        if e["type"] in recovery.HANDLED_TYPES and not e.get("_delivered")
    ]
    assert len(undelivered) >= 2
    runs = 0
    while (
        await scalar(owner_engine, "SELECT events_recovered_at FROM stripe_accounts WHERE org_id = :o", o=shop.org_id)
        is None
    ):
        totals = await recover(runtime)
        runs += 1
        assert totals["listed"] <= len(recovery.type_batches())  # one page of one event per batch and run
        assert runs <= len(undelivered) + 1
    assert runs >= len(undelivered)
    listings = fake_stripe.calls("GET", "/v1/events")
    # Each run after the first went on from the last event the one before had listed.
    assert all(c.params.get("starting_after") for c in listings[1 : len(undelivered)])
    stored = {r["external_id"] for r in await inbox_rows(owner_engine)}
    assert set(undelivered) <= stored

    completed_at = await scalar(
        owner_engine, "SELECT events_recovered_at FROM stripe_accounts WHERE org_id = :o", o=shop.org_id
    )
    before = len(fake_stripe.calls("GET", "/v1/events"))
    await recover(runtime)
    fresh = fake_stripe.calls("GET", "/v1/events")[before]
    assert "starting_after" not in fresh.params
    assert int(fresh.params["created"]["gte"]) == int((completed_at - recovery.RETRY_WINDOW).timestamp())
