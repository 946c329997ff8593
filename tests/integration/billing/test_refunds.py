"""POST/GET /v1/invoices/{id}/refunds: never more than was paid (concurrent requests included),
final only when Stripe says succeeded, refunded once whatever the webhooks do; manual payments are
refunded by hand; other organisations and roles without finance rights see nothing."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from spotless.domain.billing.public import Entry, post_entry
from tests.support.factories import arrange
from tests.support.identity import add_member, signup
from tests.support.stripe_webhooks import (
    Shop,
    connect_shop,
    deliver_event,
    issued_invoice,
    open_checkout,
    rows,
)
from tests.support.stripe_world import *  # noqa: F403 (fixtures)


async def _paid_by_card(api, fake, owner_engine, jobs, total_cents: int = 10_000) -> tuple[Shop, UUID, str]:
    shop = await connect_shop(api, owner_engine, fake)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=total_cents)
    fake.complete_session(await open_checkout(fake, shop, invoice_id, amount_cents=total_cents))
    event = fake.last_event("payment_intent.succeeded", shop.account)
    await deliver_event(api, fake, event)
    await jobs.run()
    return shop, invoice_id, event["data"]["object"]["id"]


def _url(invoice_id: UUID) -> str:
    return f"/v1/invoices/{invoice_id}/refunds"


async def _invoice(owner_engine, invoice_id):
    [row] = await rows(
        owner_engine, "SELECT status, paid_cents, refunded_cents FROM invoices WHERE id = :id", id=invoice_id
    )
    return row


async def _refund_entries(owner_engine, invoice_id):
    return await rows(
        owner_engine,
        "SELECT amount_cents, source, external_id FROM ledger_entries WHERE invoice_id = :id AND kind = 'refund'",
        id=invoice_id,
    )


async def test_five_concurrent_refunds_of_40_on_100_paid_let_at_most_two_through(api, fake_stripe, owner_engine, jobs):
    shop, invoice_id, pi = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    answers = await asyncio.gather(
        *(
            api.post(
                _url(invoice_id), json={"amount_cents": 4_000, "reason": "broken vase"}, headers=shop.owner.headers
            )
            for _ in range(5)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 201, 409, 409, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["type"].endswith("/refund-exceeds-paid") and refused["refundable_cents"] == 2_000
    made = fake_stripe.objects("refund", shop.account)
    assert len(made) == 2 and {r["payment_intent"] for r in made} == {pi}
    invoice = await _invoice(owner_engine, invoice_id)
    assert (invoice["status"], invoice["paid_cents"], invoice["refunded_cents"]) == (
        "partially_refunded",
        10_000,
        8_000,
    )

    # Stripe's webhooks about those refunds (created, charge.refunded) change nothing more.
    for kind in ("refund.created", "charge.refunded"):
        for event in fake_stripe.events(shop.account, kind):
            await deliver_event(api, fake_stripe, event)
    await jobs.run()
    assert sorted(e["amount_cents"] for e in await _refund_entries(owner_engine, invoice_id)) == [4_000, 4_000]
    listed = (await api.get(_url(invoice_id), headers=shop.owner.headers)).json()
    assert [(r["amount_cents"], r["status"], r["reason"]) for r in listed] == [(4_000, "succeeded", "broken vase")] * 2
    assert all(r["requested_by"] == str(shop.owner.user_id) for r in listed)


async def test_a_refund_is_final_only_when_stripe_says_succeeded(api, fake_stripe, owner_engine, jobs):
    shop, invoice_id, _ = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    fake_stripe.refunds_pending = True
    made = await api.post(_url(invoice_id), json={"amount_cents": 3_000, "reason": "late"}, headers=shop.owner.headers)
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending"
    assert (await _invoice(owner_engine, invoice_id))["refunded_cents"] == 0
    # A pending refund counts against what is left: 7 000 can still be asked for, not 7 001.
    too_much = await api.post(_url(invoice_id), json={"amount_cents": 7_001, "reason": "x"}, headers=shop.owner.headers)
    assert too_much.status_code == 409

    stripe_id = made.json()["stripe_refund_id"]
    fake_stripe.settle_refund(stripe_id, "succeeded")
    for event in [
        *fake_stripe.events(shop.account, "refund.updated"),
        *fake_stripe.events(shop.account, "charge.refunded"),
    ] * 2:
        await deliver_event(api, fake_stripe, event)
    await jobs.run(reverse=True)
    [refund] = (await api.get(_url(invoice_id), headers=shop.owner.headers)).json()
    assert refund["status"] == "succeeded"
    assert await _refund_entries(owner_engine, invoice_id) == [
        {"amount_cents": 3_000, "source": "stripe", "external_id": stripe_id}
    ]
    assert (await _invoice(owner_engine, invoice_id))["refunded_cents"] == 3_000


async def test_a_failed_refund_moves_no_money_and_frees_the_amount(api, fake_stripe, owner_engine, jobs):
    shop, invoice_id, _ = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    fake_stripe.refunds_pending = True
    made = (
        await api.post(_url(invoice_id), json={"amount_cents": 10_000, "reason": "all"}, headers=shop.owner.headers)
    ).json()
    fake_stripe.settle_refund(made["stripe_refund_id"], "failed", "expired_or_canceled_card")
    await deliver_event(api, fake_stripe, fake_stripe.last_event("refund.failed", shop.account))
    await jobs.run()
    [refund] = (await api.get(_url(invoice_id), headers=shop.owner.headers)).json()
    assert (refund["status"], refund["failure_reason"]) == ("failed", "expired_or_canceled_card")
    assert await _refund_entries(owner_engine, invoice_id) == []
    assert (await _invoice(owner_engine, invoice_id))["status"] == "paid"
    fake_stripe.refunds_pending = False
    again = await api.post(_url(invoice_id), json={"amount_cents": 10_000, "reason": "all"}, headers=shop.owner.headers)
    assert again.status_code == 201 and again.json()["status"] == "succeeded"
    assert (await _invoice(owner_engine, invoice_id))["status"] == "refunded"


async def test_a_retried_request_with_its_idempotency_key_refunds_once(api, fake_stripe, owner_engine, jobs):
    shop, invoice_id, _ = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    headers = {**shop.owner.headers, "Idempotency-Key": "refund-vase-1"}
    body = {"amount_cents": 2_500, "reason": "vase"}
    first = await api.post(_url(invoice_id), json=body, headers=headers)
    second = await api.post(_url(invoice_id), json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert len(fake_stripe.objects("refund", shop.account)) == 1
    assert (await _invoice(owner_engine, invoice_id))["refunded_cents"] == 2_500


async def test_a_payment_recorded_by_hand_is_refunded_by_hand(api, fake_stripe, owner_engine, jobs):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=8_000)
    async with arrange(owner_engine) as db:
        await post_entry(
            db,
            Entry(
                org_id=shop.org_id,
                client_id=shop.client_id,
                invoice_id=invoice_id,
                kind="payment",
                amount_cents=8_000,
                source="manual",
                method="etransfer",
                reference="ET-77",
                external_id="manual-1",
            ),
        )
    made = await api.post(
        _url(invoice_id),
        json={"amount_cents": 3_000, "reason": "discount", "reference": "ET-back-1"},
        headers=shop.owner.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "succeeded" and made.json()["stripe_refund_id"] is None
    [entry] = await rows(
        owner_engine,
        "SELECT amount_cents, source, method, reference FROM ledger_entries WHERE invoice_id = :id AND kind = 'refund'",
        id=invoice_id,
    )
    assert entry == {"amount_cents": 3_000, "source": "manual", "method": "etransfer", "reference": "ET-back-1"}
    assert fake_stripe.objects("refund", shop.account) == []
    over = await api.post(_url(invoice_id), json={"amount_cents": 5_001, "reason": "x"}, headers=shop.owner.headers)
    assert over.status_code == 409


async def test_nothing_can_be_refunded_on_an_unpaid_invoice(api, fake_stripe, owner_engine):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop)
    answer = await api.post(_url(invoice_id), json={"amount_cents": 1, "reason": "x"}, headers=shop.owner.headers)
    assert answer.status_code == 409 and answer.json()["refundable_cents"] == 0
    bad = await api.post(_url(invoice_id), json={"amount_cents": 0, "reason": "x"}, headers=shop.owner.headers)
    assert bad.status_code == 400


async def test_another_organisation_gets_404_and_roles_without_finance_get_403(api, fake_stripe, owner_engine, jobs):
    shop, invoice_id, _ = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    other = await signup(api)
    body = {"amount_cents": 100, "reason": "x"}
    assert (await api.post(_url(invoice_id), json=body, headers=other.headers)).status_code == 404
    assert (await api.get(_url(invoice_id), headers=other.headers)).status_code == 404
    assert (await api.get(_url(uuid4()), headers=shop.owner.headers)).status_code == 404
    viewer = await add_member(api, shop.owner, "viewer")
    assert (await api.post(_url(invoice_id), json=body, headers=viewer.headers)).status_code == 403
    assert (await api.get(_url(invoice_id), headers=viewer.headers)).status_code == 403
    finance = await add_member(api, shop.owner, "finance")
    assert (await api.post(_url(invoice_id), json=body, headers=finance.headers)).status_code == 201
    assert len((await api.get(_url(invoice_id), headers=finance.headers)).json()) == 1
    assert fake_stripe.objects("refund", shop.account)[0]["amount"] == 100


async def test_while_stripe_is_down_a_card_refund_answers_503_and_nothing_is_kept(api, fake_stripe, owner_engine, jobs):
    from spotless.domain.billing.stripe_client import reset_stripe

    shop, invoice_id, _ = await _paid_by_card(api, fake_stripe, owner_engine, jobs)
    fake_stripe.fail(503, times=None, path="/v1/refunds")
    down = await api.post(_url(invoice_id), json={"amount_cents": 1_000, "reason": "x"}, headers=shop.owner.headers)
    assert down.status_code == 503 and down.headers.get("retry-after"), down.text
    assert (await api.get(_url(invoice_id), headers=shop.owner.headers)).json() == []
    assert await _refund_entries(owner_engine, invoice_id) == []
    fake_stripe.heal()
    reset_stripe()  # the circuit the outage opened closes by itself after its cool-down; the test does not wait
    back = await api.post(_url(invoice_id), json={"amount_cents": 1_000, "reason": "x"}, headers=shop.owner.headers)
    assert back.status_code == 201 and back.json()["status"] == "succeeded"


async def test_a_refund_on_a_partly_paid_invoice_leaves_the_rest_payable(api, fake_stripe, owner_engine, jobs):
    """The client paid half and got some back: the other half is still owed and can be paid."""
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=8_000)
    async with arrange(owner_engine) as db:
        await post_entry(
            db,
            Entry(
                org_id=shop.org_id,
                client_id=shop.client_id,
                invoice_id=invoice_id,
                kind="payment",
                amount_cents=4_000,
                source="manual",
                method="cheque",
                reference="CHQ-1",
                external_id="manual-half",
            ),
        )
    refund = await api.post(
        _url(invoice_id), json={"amount_cents": 1_000, "reason": "broken vase"}, headers=shop.owner.headers
    )
    assert refund.status_code == 201, refund.text
    after = await _invoice(owner_engine, invoice_id)
    assert after["status"] == "partially_paid" and after["refunded_cents"] == 1_000
    rest = await api.post(
        f"/v1/invoices/{invoice_id}/payments",
        json={"amount_cents": 4_000, "method": "cheque", "reference": "CHQ-2"},
        headers=shop.owner.headers,
    )
    assert rest.status_code == 201, rest.text
    assert (await _invoice(owner_engine, invoice_id))["status"] == "partially_refunded"  # paid in full, 10 back
