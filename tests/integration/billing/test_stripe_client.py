"""The one way we call Stripe, against the local fake: retries, idempotency keys, timeouts, Connect
accounts and the circuit breaker, as an operator and a payer would notice them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from spotless.domain.billing.stripe_client import (
    PaymentsUnavailable,
    StripeGateway,
    StripeRejected,
    idempotency_key,
    reset_stripe,
    stripe_gateway,
)
from tests.conftest import make_settings
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env  # noqa: F401


@pytest.fixture
async def gateway(fake_stripe: FakeStripe) -> AsyncIterator[StripeGateway]:  # noqa: F811
    reset_stripe()
    settings = make_settings(
        **stripe_env(
            fake_stripe,
            STRIPE_TIMEOUT_SECONDS="3",
            STRIPE_CIRCUIT_FAILURE_THRESHOLD="2",
            STRIPE_CIRCUIT_COOLDOWN_SECONDS="0.3",
            STRIPE_CIRCUIT_PROBE_TIMEOUT_SECONDS="0.5",
        )
    )
    gw = stripe_gateway(settings.stripe)
    yield gw
    fake_stripe.heal()
    await gw.aclose()
    reset_stripe()


def create_customer(name: str) -> Any:
    return lambda v1, options: v1.customers.create_async({"name": name}, options)


def circuit_state() -> float | None:
    return REGISTRY.get_sample_value("circuit_state", {"circuit": "stripe"})


async def test_a_failing_call_is_retried_with_the_same_idempotency_key(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    fake_stripe.fail(500, times=2, path="/v1/customers")

    customer = await gateway.post("customer", ("org-1", "client-1"), create_customer("Ada"))

    calls = fake_stripe.calls("POST", "/v1/customers")
    assert [c.status for c in calls] == [500, 500, 200]  # max_network_retries=2: three tries
    assert {c.idempotency_key for c in calls} == {"spotless:customer:org-1:client-1"}
    assert len(fake_stripe.objects("customer")) == 1
    assert customer.id == fake_stripe.objects("customer")[0]["id"]


async def test_the_same_operation_twice_does_the_thing_once(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    first = await gateway.post("customer", ("org-1", "client-2"), create_customer("Bo"))
    again = await gateway.post("customer", ("org-1", "client-2"), create_customer("Bo"))
    other = await gateway.post("customer", ("org-1", "client-3"), create_customer("Cy"))

    assert again.id == first.id and other.id != first.id
    assert len(fake_stripe.objects("customer")) == 2
    assert [c.replayed for c in fake_stripe.calls("POST", "/v1/customers")] == [False, True, False]


async def test_every_post_carries_our_key_and_reads_carry_none(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    created = await gateway.post("customer", ("k",), create_customer("Di"))
    await gateway.get(lambda v1, options: v1.customers.retrieve_async(created.id, options=options))
    post, read = fake_stripe.calls()
    assert post.idempotency_key == idempotency_key("customer", "k") == "spotless:customer:k"
    assert read.method == "GET" and read.idempotency_key is None


async def test_a_connected_accounts_objects_need_its_account_header(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    account = await gateway.post("account", ("org-9",), lambda v1, o: v1.accounts.create_async({"type": "express"}, o))
    customer = await gateway.post("customer", ("org-9", "c"), create_customer("Ed"), account=account.id)

    assert fake_stripe.calls("POST", "/v1/customers")[0].account == account.id
    found = await gateway.get(
        lambda v1, options: v1.customers.retrieve_async(customer.id, options=options), account=account.id
    )
    assert found.id == customer.id
    with pytest.raises(StripeRejected) as refused:  # the platform does not see it
        await gateway.get(lambda v1, options: v1.customers.retrieve_async(customer.id, options=options))
    assert refused.value.is_missing and refused.value.status_code == 502
    assert circuit_state() == 0  # an error reply is not an outage


async def test_a_hung_stripe_answers_503_within_the_timeout(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    fake_stripe.hang()
    started = time.monotonic()
    with pytest.raises(PaymentsUnavailable) as unavailable:
        await gateway.post("customer", ("hang",), create_customer("Flo"))
    elapsed = time.monotonic() - started

    assert elapsed < 3 + 0.5  # the budget (STRIPE_TIMEOUT_SECONDS=3), retries included
    problem = unavailable.value
    assert problem.status_code == 503 and problem.type_ == "/problems/payments-unavailable"
    assert int((problem.headers or {})["Retry-After"]) >= 1


async def test_the_circuit_opens_fails_fast_and_closes_by_itself(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    fake_stripe.fail(503, times=None)  # Stripe is down
    for n in range(2):  # STRIPE_CIRCUIT_FAILURE_THRESHOLD=2 outages in a row
        with pytest.raises(PaymentsUnavailable):
            await gateway.post("customer", ("down", n), create_customer("Gus"))
    assert circuit_state() == 1 and gateway.breaker.is_open
    tried = fake_stripe.count()

    started = time.monotonic()
    with pytest.raises(PaymentsUnavailable) as refused:
        await gateway.post("customer", ("down", 3), create_customer("Gus"))
    assert time.monotonic() - started < 0.05  # fails fast, without trying
    assert fake_stripe.count() == tried
    assert 1 <= int((refused.value.headers or {})["Retry-After"]) <= 1

    # Still down at the first probe: it stays open.
    await asyncio.sleep(0.35)
    with pytest.raises(PaymentsUnavailable):
        await gateway.post("customer", ("down", 4), create_customer("Gus"))
    deadline = time.monotonic() + 3
    while not fake_stripe.count("GET", "/v1/balance") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)
    assert fake_stripe.count("GET", "/v1/balance") == 1 and fake_stripe.count() == tried + 1  # the probe alone
    assert gateway.breaker.is_open

    fake_stripe.heal()  # Stripe is back: the next probe closes the circuit
    deadline = time.monotonic() + 3
    while gateway.breaker.is_open and time.monotonic() < deadline:
        with pytest.raises(PaymentsUnavailable):
            await gateway.post("customer", ("down", 5), create_customer("Gus"))
        await asyncio.sleep(0.1)
    assert not gateway.breaker.is_open and circuit_state() == 0
    customer = await gateway.post("customer", ("up",), create_customer("Gus"))
    assert customer.name == "Gus"


async def test_one_failure_below_the_threshold_does_not_open_it(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    fake_stripe.fail(500, times=3)  # one call's three tries
    with pytest.raises(PaymentsUnavailable):
        await gateway.post("customer", ("blip",), create_customer("Hal"))
    await gateway.post("customer", ("after-blip",), create_customer("Hal"))  # success resets the count
    fake_stripe.fail(500, times=3)
    with pytest.raises(PaymentsUnavailable):
        await gateway.post("customer", ("blip", 2), create_customer("Hal"))
    assert not gateway.breaker.is_open and circuit_state() == 0
