"""POST /v1/payments/stripe/webhook: what Stripe sees when it delivers, and what we keep.

Signed the way Stripe signs (`generate_signature_header` over the raw body, our test secret);
forged, missing, tampered and stale signatures are refused with 400 and leave nothing behind;
a valid event is stored once however often and however concurrently it is delivered."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar

from spotless.app import create_app
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.stripe_webhooks import WEBHOOK_SECRET, deliver, event_body, inbox_rows, outbox_jobs, sign

PI = {"id": "pi_test_1", "object": "payment_intent", "status": "succeeded", "amount": 5000}


@pytest.fixture
def hook_app() -> Litestar:
    return create_app(make_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET))


@pytest.fixture
async def hooks(hook_app: Litestar) -> AsyncIterator[Client]:
    async with app_client(hook_app) as client:
        yield client


async def test_a_signed_event_is_stored_once_and_answered_200(hooks, owner_engine):
    body = event_body("payment_intent.succeeded", PI, account="acct_1")
    first = await deliver(hooks, body)
    again = await deliver(hooks, body)  # Stripe retries what it thinks failed
    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    [row] = await inbox_rows(owner_engine)
    assert (row["external_id"], row["event_type"]) == (body["id"], "payment_intent.succeeded")
    assert row["payload"]["account"] == "acct_1" and row["payload"]["data"]["object"]["id"] == "pi_test_1"
    assert await outbox_jobs(owner_engine) == 1  # processing is a job, enqueued for the new event only


async def test_five_concurrent_deliveries_of_one_event_store_one_row_and_one_job(hooks, owner_engine):
    body = event_body("payment_intent.succeeded", PI, account="acct_1")
    answers = await asyncio.gather(*(deliver(hooks, body) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True, True]
    assert len(await inbox_rows(owner_engine)) == 1
    assert await outbox_jobs(owner_engine) == 1


async def test_the_signature_is_checked_on_the_bytes_received(hooks, owner_engine):
    """Stripe's body is not what json.dumps would make of it (spacing, key order, escapes): a
    verifier that re-serialised the body would refuse it."""
    raw = '{\n  "type": "payment_intent.succeeded",\n  "id": "evt_raw_1", "object": "event",\n'
    raw += '  "data": {"object": {"id": "pi_x", "object": "payment_intent", "description": "caf\\u00e9"}}\n}'
    answer = await deliver(hooks, raw)
    assert answer.status_code == 200, answer.text
    [row] = await inbox_rows(owner_engine)
    assert row["payload"]["data"]["object"]["description"] == "café"


@pytest.mark.parametrize("case", ["wrong_secret", "missing", "tampered", "stale", "garbage", "no_v1"])
async def test_a_forged_missing_or_stale_signature_is_refused_and_nothing_is_stored(hooks, owner_engine, case):
    body = event_body("payment_intent.succeeded", PI, account="acct_1")
    raw = json.dumps(body)
    if case == "wrong_secret":
        answer = await deliver(hooks, raw, secret="whsec_someone_else")
    elif case == "missing":
        answer = await deliver(hooks, raw, signature="")
    elif case == "tampered":
        header = sign(raw)
        answer = await deliver(hooks, raw.replace("5000", "1"), signature=header)
    elif case == "stale":
        answer = await deliver(hooks, raw, timestamp=int(time.time()) - 301)
    elif case == "garbage":
        answer = await deliver(hooks, raw, signature="t=notanumber,v1=zz")
    else:
        answer = await deliver(hooks, raw, signature=sign(raw).replace("v1=", "v0="))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/invalid-signature")
    assert await inbox_rows(owner_engine) == []
    assert await outbox_jobs(owner_engine) == 0


async def test_a_signature_within_the_tolerance_is_accepted(hooks, owner_engine):
    body = event_body("payment_intent.succeeded", PI)
    answer = await deliver(hooks, body, timestamp=int(time.time()) - 240)  # a slow retry, 4 minutes old
    assert answer.status_code == 200, answer.text
    assert len(await inbox_rows(owner_engine)) == 1


async def test_a_signed_body_that_is_not_an_event_is_refused(hooks, owner_engine):
    for raw in ('{"id": "evt_1"}', "[1, 2]", "not json"):
        answer = await deliver(hooks, raw)
        assert answer.status_code == 400, raw
    assert await inbox_rows(owner_engine) == []


async def test_a_checkout_sessions_pay_url_is_not_stored(hooks, owner_engine):
    url = "https://checkout.stripe.com/c/pay/cs_test_secret#bearer"
    session = {"id": "cs_test_1", "object": "checkout.session", "url": url, "payment_status": "unpaid"}
    assert (await deliver(hooks, event_body("checkout.session.expired", session, account="acct_1"))).status_code == 200
    [row] = await inbox_rows(owner_engine)
    assert row["payload"]["data"]["object"]["url"] is None
    assert url not in json.dumps(row["payload"])


async def test_no_bearer_token_is_needed_and_a_burst_from_stripe_is_never_throttled(owner_engine):
    settings = make_settings(
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, RATE_LIMIT_ENABLED="true", PUBLIC_RATE_LIMIT_PER_MINUTE="3"
    )
    async with app_client(create_app(settings)) as client:
        answers = [await deliver(client, event_body("payment_intent.succeeded", PI)) for _ in range(6)]
        # The public pages are still limited from the same address; the webhook is not.
        public = [await client.get("/v1/pay/not-a-token") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 6
    assert "ratelimit-policy" not in answers[0].headers
    assert len(await inbox_rows(owner_engine)) == 6
    assert public[-1].status_code == 429


async def test_without_a_configured_secret_deliveries_are_refused_for_a_retry(owner_engine):
    base = make_settings()
    unset = msgspec.structs.replace(base, stripe=msgspec.structs.replace(base.stripe, webhook_secret=""))
    async with app_client(create_app(unset)) as client:
        answer = await deliver(client, event_body("payment_intent.succeeded", PI))
    assert answer.status_code == 503
    assert await inbox_rows(owner_engine) == []


async def test_a_secret_being_rotated_accepts_both_signatures(owner_engine):
    settings = make_settings(STRIPE_WEBHOOK_SECRET=f"whsec_new_one_0123456789,{WEBHOOK_SECRET}")
    async with app_client(create_app(settings)) as client:
        old = await deliver(client, event_body("payment_intent.succeeded", PI))
        new = await deliver(client, event_body("payment_intent.succeeded", PI), secret="whsec_new_one_0123456789")
        other = await deliver(client, event_body("payment_intent.succeeded", PI), secret="whsec_neither")
    assert (old.status_code, new.status_code, other.status_code) == (200, 200, 400)
