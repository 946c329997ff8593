"""The local fake of Stripe behaves like the parts of Stripe we rely on (through the real library),
so tests built on it prove something: Connect scoping, idempotency, Checkout, off-session charges,
refund limits, disputes, the event list and signed webhook bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from spotless.domain.billing.stripe_client import StripeGateway, StripeRejected, reset_stripe, stripe_gateway
from tests.conftest import make_settings
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env  # noqa: F401


@pytest.fixture
async def gateway(fake_stripe: FakeStripe) -> AsyncIterator[StripeGateway]:  # noqa: F811
    reset_stripe()
    gw = stripe_gateway(make_settings(**stripe_env(fake_stripe, STRIPE_MAX_NETWORK_RETRIES="0")).stripe)
    yield gw
    await gw.aclose()
    reset_stripe()


async def _account(gw: StripeGateway, org: str = "org") -> Any:
    return await gw.post("account", (org,), lambda v1, o: v1.accounts.create_async({"type": "express"}, o))


async def _session(gw: StripeGateway, account: str, key: str, amount: int = 5000, **extra: Any) -> Any:
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": "cad", "unit_amount": amount, "product_data": {}}}],
        "success_url": "https://app.example/ok",
        "client_reference_id": "inv-1",
        "metadata": {"invoice_id": "inv-1"},
        "payment_intent_data": {"metadata": {"invoice_id": "inv-1"}},
        **extra,
    }
    return await gw.post(
        "checkout", (key,), lambda v1, o: v1.checkout.sessions.create_async(params, o), account=account
    )


async def test_checkout_completion_puts_the_metadata_on_the_payment_intent_and_charge(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    session = await _session(gateway, account.id, "a")
    assert session.status == "open" and session.amount_total == 5000 and session.url

    fake_stripe.complete_session(session.id)
    done = await gateway.get(
        lambda v1, o: v1.checkout.sessions.retrieve_async(session.id, {"expand": ["payment_intent"]}, o),
        account=account.id,
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.payment_intent.metadata["invoice_id"] == "inv-1"
    charge = fake_stripe.get(done.payment_intent.latest_charge, account.id)
    assert charge["metadata"]["invoice_id"] == "inv-1"
    types = [e["type"] for e in fake_stripe.events(account.id)]
    assert types == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]


async def test_an_expired_session_cannot_be_expired_again(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    session = await _session(gateway, account.id, "b")
    expired = await gateway.post(
        "expire",
        (session.id,),
        lambda v1, o: v1.checkout.sessions.expire_async(session.id, None, o),
        account=account.id,
    )
    assert expired.status == "expired"
    with pytest.raises(StripeRejected) as refused:
        await gateway.post(
            "expire",
            (session.id, 2),
            lambda v1, o: v1.checkout.sessions.expire_async(session.id, None, o),
            account=account.id,
        )
    assert refused.value.http_status == 400


async def test_a_reused_key_with_other_parameters_is_refused(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    await _session(gateway, account.id, "same", amount=5000)
    with pytest.raises(StripeRejected) as refused:
        await _session(gateway, account.id, "same", amount=6000)
    assert refused.value.error_type == "idempotency_error"


async def test_off_session_charges_succeed_or_decline_with_the_payment_intent(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    customer = await gateway.post(
        "customer", ("c",), lambda v1, o: v1.customers.create_async({"name": "Ada"}, o), account=account.id
    )
    setup = await gateway.post(
        "setup",
        ("c",),
        lambda v1, o: v1.checkout.sessions.create_async(
            {"mode": "setup", "customer": customer.id, "currency": "cad", "success_url": "https://x.example"}, o
        ),
        account=account.id,
    )
    fake_stripe.complete_session(setup.id)
    seti = fake_stripe.get(fake_stripe.get(setup.id, account.id)["setup_intent"], account.id)

    def charge(v1: Any, o: Any) -> Any:
        params = {
            "amount": 2500,
            "currency": "cad",
            "customer": customer.id,
            "payment_method": seti["payment_method"],
            "confirm": True,
            "off_session": True,
            "metadata": {"invoice_id": "inv-9"},
        }
        return v1.payment_intents.create_async(params, o)

    paid = await gateway.post("charge", ("inv-9", 1), charge, account=account.id)
    assert paid.status == "succeeded" and paid.latest_charge

    fake_stripe.decline_next_charge()
    with pytest.raises(StripeRejected) as declined:
        await gateway.post("charge", ("inv-9", 2), charge, account=account.id)
    assert declined.value.is_card_error and declined.value.decline_code == "insufficient_funds"
    assert declined.value.payment_intent_id
    assert fake_stripe.last_event("payment_intent.payment_failed", account.id)["data"]["object"]["metadata"] == {
        "invoice_id": "inv-9"
    }


async def test_refunds_never_exceed_the_charge_and_disputes_make_events(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    session = await _session(gateway, account.id, "r")
    pi = fake_stripe.get(fake_stripe.complete_session(session.id)["payment_intent"], account.id)

    def refund(amount: int) -> Any:
        return lambda v1, o: v1.refunds.create_async({"payment_intent": pi["id"], "amount": amount}, o)

    first = await gateway.post("refund", ("r1",), refund(3000), account=account.id)
    assert first.status == "succeeded"
    with pytest.raises(StripeRejected):
        await gateway.post("refund", ("r2",), refund(2001), account=account.id)
    await gateway.post("refund", ("r3",), refund(2000), account=account.id)
    assert fake_stripe.get(pi["latest_charge"], account.id)["refunded"] is True

    session2 = await _session(gateway, account.id, "d")
    pi2 = fake_stripe.complete_session(session2.id)["payment_intent"]
    dispute = fake_stripe.open_dispute(pi2)
    fake_stripe.close_dispute(dispute["id"], "lost")
    types = [e["type"] for e in fake_stripe.events(account.id) if e["type"].startswith("charge.dispute")]
    assert types == ["charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed"]


async def test_undelivered_events_are_listed_by_type_and_signed_bodies_verify(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await _account(gateway)
    fake_stripe.update_account(account.id, charges_enabled=True, details_submitted=True)
    session = await _session(gateway, account.id, "e")
    fake_stripe.complete_session(session.id)
    completed = fake_stripe.last_event("checkout.session.completed", account.id)
    fake_stripe.mark_delivered(fake_stripe.last_event("payment_intent.succeeded", account.id)["id"])

    listed = await gateway.get(
        lambda v1, o: v1.events.list_async(
            {"delivery_success": False, "types": ["checkout.session.completed", "payment_intent.succeeded"]}, o
        ),
        account=account.id,
    )
    assert [e.id for e in listed.data] == [completed["id"]]
    updated = await gateway.get(lambda v1, o: v1.events.list_async({"type": "account.updated"}, o), account=account.id)
    assert updated.data[0].account == account.id and updated.data[0].data.object.charges_enabled

    body, headers = fake_stripe.signed_event(completed["id"])
    event = stripe.Webhook.construct_event(body, headers["stripe-signature"], fake_stripe.webhook_secret)
    assert event.type == "checkout.session.completed" and event.data.object.id == session.id
    assert event.account == account.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body + b" ", headers["stripe-signature"], fake_stripe.webhook_secret)
