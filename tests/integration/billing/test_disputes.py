"""A card dispute from opening to a won close, through the webhook endpoint and the inbox job: the
invoice is flagged, the withdrawal and Stripe's fee land in the ledger once, the owner is told the
evidence due date, and winning reinstates the money. GET /v1/disputes lists them per organisation."""

from __future__ import annotations

from datetime import UTC, datetime

from spotless.domain.billing.disputes import movements, notify_dispute_opened
from spotless.domain.messaging.actors import deliver_message
from spotless.lib.events import decode
from tests.support.identity import add_member, signup
from tests.support.stripe_webhooks import connect_shop, deliver_event, issued_invoice, open_checkout, rows
from tests.support.stripe_world import *  # noqa: F403 (fixtures)


async def _invoice(owner_engine, invoice_id):
    [row] = await rows(owner_engine, "SELECT status, paid_cents, disputed FROM invoices WHERE id = :id", id=invoice_id)
    return row


async def _movements(owner_engine, invoice_id):
    return sorted(
        (r["kind"], r["amount_cents"])
        for r in await rows(
            owner_engine, "SELECT kind, amount_cents FROM ledger_entries WHERE invoice_id = :id", id=invoice_id
        )
    )


async def _deliver_all(api, fake, account, *kinds, times=1):
    for kind in kinds:
        for event in fake.events(account, kind):
            for _ in range(times):
                assert (await deliver_event(api, fake, event)).status_code == 200


async def test_a_dispute_round_trip_flags_withdraws_tells_the_owner_and_reinstates_when_won(
    api, fake_stripe, owner_engine, jobs
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=12_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=12_000))
    pi = fake_stripe.last_event("payment_intent.succeeded", shop.account)["data"]["object"]["id"]
    await _deliver_all(api, fake_stripe, shop.account, "payment_intent.succeeded")
    await jobs.run()
    assert await _invoice(owner_engine, invoice_id) == {"status": "paid", "paid_cents": 12_000, "disputed": False}

    dispute = fake_stripe.open_dispute(pi, reason="fraudulent", fee=1_500)
    # funds_withdrawn arrives before created, and twice.
    await _deliver_all(
        api, fake_stripe, shop.account, "charge.dispute.funds_withdrawn", "charge.dispute.created", times=2
    )
    await jobs.run()
    assert await _invoice(owner_engine, invoice_id) == {"status": "issued", "paid_cents": 0, "disputed": True}
    assert await _movements(owner_engine, invoice_id) == [
        ("dispute_withdrawal", 12_000),
        ("fee", 1_500),
        ("payment", 12_000),
    ]
    [row] = await rows(
        owner_engine,
        "SELECT status, reason, evidence_due_by, outcome FROM disputes WHERE invoice_id = :id",
        id=invoice_id,
    )
    due = datetime.fromtimestamp(dispute["evidence_details"]["due_by"], UTC)
    assert (row["status"], row["reason"], row["evidence_due_by"], row["outcome"]) == (
        "needs_response",
        "fraudulent",
        due,
        None,
    )

    # The office is told once (its owner: finance.manage), through messaging, heard twice.
    notices = await rows(owner_engine, "SELECT args FROM job_outbox WHERE actor_name = 'billing.notify_dispute_opened'")
    assert len(notices) == 1
    event_name, event_id, payload = notices[0]["args"]
    for _ in range(2):
        await notify_dispute_opened(event_name, event_id, payload)
    assert decode(event_name, payload).evidence_due_by == due
    told = await rows(
        owner_engine, "SELECT id, user_id, send_key, params FROM deliveries WHERE kind = 'office.dispute_opened'"
    )
    assert [(r["user_id"], r["send_key"]) for r in told] == [(shop.owner.user_id, "opened")]
    await deliver_message(str(shop.owner.org_id), str(told[0]["id"]))
    [sent] = await rows(owner_engine, "SELECT status, summary FROM deliveries WHERE id = :id", id=told[0]["id"])
    assert sent["status"] == "logged" and "INV-2026-000001" in sent["summary"]

    listed = (await api.get("/v1/disputes?state=open", headers=shop.owner.headers)).json()
    assert [(d["stripe_dispute_id"], d["status"], d["amount_cents"]) for d in listed["items"]] == [
        (dispute["id"], "needs_response", 12_000)
    ]

    fake_stripe.update_dispute(dispute["id"], "under_review")
    fake_stripe.close_dispute(dispute["id"], outcome="won")
    # closed before funds_reinstated before updated: the re-read state decides.
    await _deliver_all(
        api,
        fake_stripe,
        shop.account,
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
        "charge.dispute.updated",
        times=2,
    )
    await jobs.run(reverse=True)
    assert await _invoice(owner_engine, invoice_id) == {"status": "paid", "paid_cents": 12_000, "disputed": False}
    assert await _movements(owner_engine, invoice_id) == [
        ("dispute_reinstatement", 12_000),
        ("dispute_withdrawal", 12_000),
        ("fee", 1_500),
        ("payment", 12_000),
    ]
    [row] = await rows(
        owner_engine, "SELECT status, outcome, closed_at FROM disputes WHERE invoice_id = :id", id=invoice_id
    )
    assert (row["status"], row["outcome"]) == ("won", "won") and row["closed_at"] is not None
    closed = (await api.get("/v1/disputes?state=closed", headers=shop.owner.headers)).json()["items"]
    assert [d["outcome"] for d in closed] == ["won"]
    assert (await api.get("/v1/disputes?state=open", headers=shop.owner.headers)).json()["items"] == []
    audit = await rows(
        owner_engine,
        "SELECT action FROM admin_audit_logs WHERE resource_id = :id AND action LIKE 'billing.dispute.%' ORDER BY created_at",
        id=str(invoice_id),
    )
    assert [a["action"] for a in audit] == ["billing.dispute.open", "billing.dispute.close"]


async def test_a_lost_dispute_keeps_the_withdrawal(api, fake_stripe, owner_engine, jobs):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=6_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=6_000))
    pi = fake_stripe.last_event("payment_intent.succeeded", shop.account)["data"]["object"]["id"]
    dispute = fake_stripe.open_dispute(pi)
    fake_stripe.close_dispute(dispute["id"], outcome="lost")
    await _deliver_all(
        api, fake_stripe, shop.account, "charge.dispute.closed", "payment_intent.succeeded", "charge.dispute.created"
    )
    await jobs.run()
    assert await _movements(owner_engine, invoice_id) == [
        ("dispute_withdrawal", 6_000),
        ("fee", 1_500),
        ("payment", 6_000),
    ]
    invoice = await _invoice(owner_engine, invoice_id)
    assert (invoice["paid_cents"], invoice["disputed"]) == (0, False)
    [row] = await rows(owner_engine, "SELECT outcome FROM disputes WHERE invoice_id = :id", id=invoice_id)
    assert row["outcome"] == "lost"


async def test_disputes_are_listed_only_to_their_organisation_and_to_finance_roles(
    api, fake_stripe, owner_engine, jobs
):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=3_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=3_000))
    pi = fake_stripe.last_event("payment_intent.succeeded", shop.account)["data"]["object"]["id"]
    fake_stripe.open_dispute(pi)
    await _deliver_all(api, fake_stripe, shop.account, "charge.dispute.created")
    await jobs.run()
    assert len((await api.get("/v1/disputes", headers=shop.owner.headers)).json()["items"]) == 1
    other = await signup(api)
    assert (await api.get("/v1/disputes", headers=other.headers)).json()["items"] == []
    mine = await api.get(f"/v1/disputes?invoice_id={invoice_id}", headers=other.headers)
    assert mine.status_code == 200 and mine.json()["items"] == []
    viewer = await add_member(api, shop.owner, "viewer")
    assert (await api.get("/v1/disputes", headers=viewer.headers)).status_code == 403
    bad = await api.get("/v1/disputes?state=maybe", headers=shop.owner.headers)
    assert bad.status_code == 400


async def test_a_won_dispute_whose_fee_stripe_returns_reverses_the_fee_once(api, fake_stripe, owner_engine, jobs):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=8_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=8_000))
    pi = fake_stripe.last_event("payment_intent.succeeded", shop.account)["data"]["object"]["id"]
    dispute = fake_stripe.open_dispute(pi, fee=1_500)
    fake_stripe.close_dispute(dispute["id"], outcome="won", fee_returned=1_500)
    # Every event twice, the close and reinstatement first: the re-read dispute decides, once.
    await _deliver_all(
        api,
        fake_stripe,
        shop.account,
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
        "payment_intent.succeeded",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        times=2,
    )
    await jobs.run()
    await _deliver_all(api, fake_stripe, shop.account, "charge.dispute.funds_reinstated", "charge.dispute.closed")
    await jobs.run(reverse=True)
    assert await _movements(owner_engine, invoice_id) == [
        ("dispute_reinstatement", 8_000),
        ("dispute_withdrawal", 8_000),
        ("fee", 1_500),
        ("fee_reversal", 1_500),
        ("payment", 8_000),
    ]
    assert await _invoice(owner_engine, invoice_id) == {"status": "paid", "paid_cents": 8_000, "disputed": False}
    audit = await rows(
        owner_engine,
        "SELECT action, after FROM admin_audit_logs WHERE resource_id = :id AND action LIKE 'billing.dispute.%'",
        id=str(invoice_id),
    )
    reversed_ = [a["after"]["amount_cents"] for a in audit if a["action"] == "billing.dispute.fee_reversed"]
    assert reversed_ == [1_500]


async def test_a_won_dispute_whose_fee_stripe_keeps_reverses_nothing(api, fake_stripe, owner_engine, jobs):
    shop = await connect_shop(api, owner_engine, fake_stripe)
    invoice_id = await issued_invoice(owner_engine, shop, total_cents=5_000)
    fake_stripe.complete_session(await open_checkout(fake_stripe, shop, invoice_id, amount_cents=5_000))
    pi = fake_stripe.last_event("payment_intent.succeeded", shop.account)["data"]["object"]["id"]
    dispute = fake_stripe.open_dispute(pi, fee=1_500)
    fake_stripe.close_dispute(dispute["id"], outcome="won")
    await _deliver_all(api, fake_stripe, shop.account, "payment_intent.succeeded", "charge.dispute.closed")
    await jobs.run()
    kinds = [kind for kind, _ in await _movements(owner_engine, invoice_id)]
    assert "fee" in kinds and "fee_reversal" not in kinds


def test_movements_never_give_back_more_fee_than_was_taken():
    dispute = {
        "balance_transactions": [
            {"amount": -5_000, "fee": 1_500},
            {"amount": 5_000, "fee": -9_999},
            "not a transaction",
        ]
    }
    assert movements(dispute) == (5_000, 1_500, 5_000, 1_500)
    assert movements({"balance_transactions": [{"amount": -5_000, "fee": 1_500}]}) == (5_000, 1_500, 0, 0)
