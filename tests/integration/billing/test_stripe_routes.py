"""Connect, Checkout and saved cards through the real routes, with the local fake of Stripe at the
far end: what the office and the paying client would notice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.billing.cards import apply_setup_completed
from spotless.domain.billing.models import CheckoutSession, Invoice
from spotless.domain.billing.public import Entry, post_entry
from spotless.domain.billing.stripe_client import reset_stripe
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.factories import AppSessions, arrange, new_client
from tests.support.factories.billing import new_invoice
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env  # noqa: F401
from tests.support.identity import Member, add_member, signup


@pytest.fixture
def stripe_settings(fake_stripe: FakeStripe) -> Settings:  # noqa: F811
    return make_settings(**stripe_env(fake_stripe, STRIPE_TIMEOUT_SECONDS="1.5"))


@pytest.fixture
async def api(stripe_settings: Settings) -> AsyncIterator[Client]:
    reset_stripe()
    async with app_client(create_app(stripe_settings)) as client:
        yield client
    reset_stripe()


@dataclass
class Org:
    owner: Member
    client_id: UUID
    account_id: str


async def connected_org(api: Client, fake: FakeStripe, owner_engine: AsyncEngine, *, enable: bool = True) -> Org:
    owner = await signup(api, name="Shine Co")
    response = await api.post("/v1/billing/stripe/connect", headers=owner.headers)
    assert response.status_code == 200, response.text
    account_id = response.json()["account"]["account_id"]
    if enable:
        fake.update_account(account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True)
        status = await api.get("/v1/billing/stripe/account", headers=owner.headers)  # back from onboarding
        assert status.json()["status"] == "active"
    async with arrange(owner_engine) as db:
        client = await new_client(db, owner.org_id, name="Ada Client", email="ada@example.com")
    return Org(owner=owner, client_id=client.id, account_id=account_id)


async def issued_invoice(owner_engine: AsyncEngine, org: Org, total: int = 12_345, **fields: Any) -> UUID:
    async with arrange(owner_engine) as db:
        invoice = await new_invoice(
            db,
            org.owner.org_id,
            org.client_id,
            status="issued",
            series="2026",
            number=fields.pop("number", 1),
            display_number="INV-2026-000001",
            client_email="ada@example.com",
            subtotal_cents=total,
            total_cents=total,
            **fields,
        )
    return invoice.id


# --- Connect ------------------------------------------------------------------------------------


async def test_connecting_creates_one_account_and_its_status_follows_stripe(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    owner = await signup(api)
    before = await api.get("/v1/billing/stripe/account", headers=owner.headers)
    assert before.status_code == 200 and before.json()["status"] == "not_connected"

    first = await api.post("/v1/billing/stripe/connect", headers=owner.headers)
    again = await api.post("/v1/billing/stripe/connect", headers=owner.headers)
    assert first.status_code == again.status_code == 200
    account_id = first.json()["account"]["account_id"]
    assert again.json()["account"]["account_id"] == account_id
    assert len(fake_stripe.objects("account")) == 1  # the second click reused it
    assert first.json()["url"].startswith("https://connect.stripe.com/")
    assert first.json()["url"] != again.json()["url"]  # a fresh onboarding link each time
    assert fake_stripe.get(account_id)["metadata"] == {"org_id": str(owner.org_id)}

    pending = (await api.get("/v1/billing/stripe/account", headers=owner.headers)).json()
    assert (pending["status"], pending["charges_enabled"], pending["synced"]) == ("pending", False, True)
    assert pending["requirements_due"]

    fake_stripe.update_account(account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True)
    active = (await api.get("/v1/billing/stripe/account", headers=owner.headers)).json()
    assert (active["status"], active["charges_enabled"], active["payouts_enabled"]) == ("active", True, True)

    fake_stripe.hang()  # Stripe unreachable: the saved state, marked as not synced, and fast
    started = time.monotonic()
    stale = await api.get("/v1/billing/stripe/account", headers=owner.headers)
    assert stale.status_code == 200 and time.monotonic() - started < 2.5
    assert (stale.json()["status"], stale.json()["synced"]) == ("active", False)


# --- Checkout -----------------------------------------------------------------------------------


async def test_checkout_is_for_the_open_amount_and_carries_the_invoice_everywhere(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org, total=12_345)
    async with app_sessions.scoped(org.owner.org_id) as s:  # 45.00 already paid by e-transfer
        await post_entry(
            s,
            Entry(
                org_id=org.owner.org_id,
                client_id=org.client_id,
                invoice_id=invoice_id,
                kind="payment",
                amount_cents=4_500,
                source="manual",
                method="etransfer",
            ),
        )

    response = await api.post(f"/v1/invoices/{invoice_id}/checkout", headers=org.owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["amount_cents"], body["currency"], body["reused"]) == (7_845, "CAD", False)
    assert body["url"].startswith("https://checkout.stripe.com/")

    (session,) = fake_stripe.objects("checkout.session", org.account_id)  # on the org's own account
    assert session["amount_total"] == 7_845 and session["url"] == body["url"]
    assert session["client_reference_id"] == str(invoice_id)
    assert session["metadata"]["invoice_id"] == str(invoice_id)
    stored = fake_stripe.get(session["id"], org.account_id)
    assert stored["_payment_intent_data"]["metadata"]["invoice_id"] == str(invoice_id)
    assert session["customer_email"] == "ada@example.com"

    # Paid: the PaymentIntent and its Charge name the invoice (refunds and disputes map back).
    fake_stripe.complete_session(session["id"])
    intent = fake_stripe.get(fake_stripe.get(session["id"], org.account_id)["payment_intent"], org.account_id)
    assert intent["metadata"]["invoice_id"] == str(invoice_id)
    assert fake_stripe.get(intent["latest_charge"], org.account_id)["metadata"]["invoice_id"] == str(invoice_id)

    async with owner_engine.connect() as conn:  # the bearer URL is not stored anywhere
        dump = await conn.execute(text("SELECT row_to_json(c)::text FROM checkout_sessions c"))
        assert all("checkout.stripe.com" not in row[0] for row in dump)


async def test_two_concurrent_clicks_get_one_session(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org)

    first, second = await asyncio.gather(
        api.post(f"/v1/invoices/{invoice_id}/checkout", headers=org.owner.headers),
        api.post(f"/v1/invoices/{invoice_id}/checkout", headers=org.owner.headers),
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["url"] == second.json()["url"]
    assert sorted([first.json()["reused"], second.json()["reused"]]) == [False, True]
    assert len(fake_stripe.objects("checkout.session", org.account_id)) == 1
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM checkout_sessions")) == 1


async def test_a_changed_amount_replaces_the_open_session(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org, total=10_000)
    url = f"/v1/invoices/{invoice_id}/checkout"
    first = (await api.post(url, headers=org.owner.headers)).json()
    assert (await api.post(url, headers=org.owner.headers)).json()["url"] == first["url"]

    async with app_sessions.scoped(org.owner.org_id) as s:  # cash for 30.00 meanwhile
        entry = Entry(
            org_id=org.owner.org_id,
            client_id=org.client_id,
            invoice_id=invoice_id,
            kind="payment",
            amount_cents=3_000,
            source="manual",
            method="cash",
        )
        await post_entry(s, entry)
    second = (await api.post(url, headers=org.owner.headers)).json()
    assert second["amount_cents"] == 7_000 and second["url"] != first["url"] and not second["reused"]
    sessions = {s["amount_total"]: s["status"] for s in fake_stripe.objects("checkout.session", org.account_id)}
    assert sessions == {10_000: "expired", 7_000: "open"}  # the old one cannot be paid any more
    async with app_sessions.scoped(org.owner.org_id) as s:
        rows = (await s.scalars(select(CheckoutSession).order_by(CheckoutSession.created_at))).all()
        assert [(r.amount_cents, r.status) for r in rows] == [(10_000, "expired"), (7_000, "open")]

    # Expired at Stripe by itself (24 h later): a new session, not a dead link.
    fake_stripe.expire_session(
        next(s["id"] for s in fake_stripe.objects("checkout.session", org.account_id) if s["status"] == "open")
    )
    third = (await api.post(url, headers=org.owner.headers)).json()
    assert third["url"] not in (first["url"], second["url"]) and third["amount_cents"] == 7_000


async def test_what_cannot_be_paid_by_card_is_refused(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    async with arrange(owner_engine) as db:
        draft = await new_invoice(db, org.owner.org_id, org.client_id)
        paid = await new_invoice(
            db, org.owner.org_id, org.client_id, status="paid", series="2026", number=7, paid_cents=10_000
        )
    for invoice_id in (draft.id, paid.id):
        response = await api.post(f"/v1/invoices/{invoice_id}/checkout", headers=org.owner.headers)
        assert response.status_code == 409 and response.json()["type"] == "/problems/invoice-not-payable"

    not_ready = await connected_org(api, fake_stripe, owner_engine, enable=False)
    invoice_id = await issued_invoice(owner_engine, not_ready)
    response = await api.post(f"/v1/invoices/{invoice_id}/checkout", headers=not_ready.owner.headers)
    assert response.status_code == 409 and response.json()["type"] == "/problems/payments-not-enabled"
    assert fake_stripe.objects("checkout.session", not_ready.account_id) == []


async def test_a_stripe_outage_answers_503_fast_and_stores_nothing(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org)
    fake_stripe.hang()
    started = time.monotonic()
    response = await api.post(f"/v1/invoices/{invoice_id}/checkout", headers=org.owner.headers)
    assert time.monotonic() - started < 2.5  # STRIPE_TIMEOUT_SECONDS=1.5, retries included
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/payments-unavailable"
    assert int(response.headers["retry-after"]) >= 1
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM checkout_sessions")) == 0


# --- saved cards --------------------------------------------------------------------------------


async def _save_card(
    api: Client, fake: FakeStripe, org: Org, app_sessions: AppSessions, last4: str = "4242"
) -> dict[str, Any]:
    from tests.support.fake_stripe import Card

    response = await api.post(f"/v1/clients/{org.client_id}/card-setup", headers=org.owner.headers)
    assert response.status_code == 200, response.text
    session = next(s for s in fake.objects("checkout.session", org.account_id) if s["url"] == response.json()["url"])
    done = fake.complete_session(session["id"], card=Card(last4=last4))
    intent = fake.get(done["setup_intent"], org.account_id)
    method = fake.get(intent["payment_method"], org.account_id)
    async with app_sessions.scoped(org.owner.org_id) as s:  # what the checkout.session.completed handler does
        assert await apply_setup_completed(s, org.owner.org_id, done, method) is not None
    return session


async def test_a_client_saves_a_card_with_consent_and_the_office_can_remove_it(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    session = await _save_card(api, fake_stripe, org, app_sessions)
    assert session["mode"] == "setup" and session["client_reference_id"] == str(org.client_id)
    assert "Shine Co" in session["metadata"]["consent_text"]
    (customer,) = fake_stripe.objects("customer", org.account_id)
    assert (customer["name"], customer["email"]) == ("Ada Client", "ada@example.com")

    listed = (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json()
    assert [(m["brand"], m["last4"]) for m in listed] == [("visa", "4242")]
    assert listed[0]["consent_text"] == session["metadata"]["consent_text"] and listed[0]["consent_at"]

    # A second card replaces the first (one active card), on the same Stripe customer.
    await _save_card(api, fake_stripe, org, app_sessions, last4="1881")
    listed = (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json()
    assert [m["last4"] for m in listed] == ["1881"]
    assert len(fake_stripe.objects("customer", org.account_id)) == 1

    removed = await api.delete(
        f"/v1/clients/{org.client_id}/payment-methods/{listed[0]['id']}", headers=org.owner.headers
    )
    assert removed.status_code == 204
    assert (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json() == []
    assert fake_stripe.count("POST", "/v1/payment_methods/") == 1  # detached at Stripe too
    again = await api.delete(
        f"/v1/clients/{org.client_id}/payment-methods/{listed[0]['id']}", headers=org.owner.headers
    )
    assert again.status_code == 404

    # Stripe down: the card the client wants gone is gone all the same (never charged again).
    await _save_card(api, fake_stripe, org, app_sessions, last4="0005")
    (card,) = (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json()
    fake_stripe.hang()
    removed = await api.delete(f"/v1/clients/{org.client_id}/payment-methods/{card['id']}", headers=org.owner.headers)
    fake_stripe.heal()
    assert removed.status_code == 204
    assert (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json() == []


# --- isolation and roles --------------------------------------------------------------------------


async def test_another_organisation_and_lesser_roles_get_nothing(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
) -> None:
    org = await connected_org(api, fake_stripe, owner_engine)
    invoice_id = await issued_invoice(owner_engine, org)
    await _save_card(api, fake_stripe, org, app_sessions)
    method_id = (await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)).json()[0][
        "id"
    ]
    other = await connected_org(api, fake_stripe, owner_engine)
    by_id = [
        ("POST", f"/v1/invoices/{invoice_id}/checkout"),
        ("POST", f"/v1/clients/{org.client_id}/card-setup"),
        ("GET", f"/v1/clients/{org.client_id}/payment-methods"),
        ("DELETE", f"/v1/clients/{org.client_id}/payment-methods/{method_id}"),
    ]
    sessions_before = len(fake_stripe.objects("checkout.session", org.account_id))
    for method, url in by_id:
        response = await api.request(method, url, headers=other.owner.headers)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["type"] == "/problems/not-found"
    # Another organisation's account status is its own.
    theirs = (await api.get("/v1/billing/stripe/account", headers=other.owner.headers)).json()
    assert theirs["account_id"] == other.account_id != org.account_id

    viewer = await add_member(api, org.owner, "viewer")
    dispatcher = await add_member(api, org.owner, "dispatcher")
    for member in (viewer, dispatcher):
        for method, url in [*by_id, ("POST", "/v1/billing/stripe/connect"), ("GET", "/v1/billing/stripe/account")]:
            response = await api.request(method, url, headers=member.headers)
            assert response.status_code == 403, (member.role, method, url, response.text)
    assert len(fake_stripe.objects("checkout.session", org.account_id)) == sessions_before
    listed = await api.get(f"/v1/clients/{org.client_id}/payment-methods", headers=org.owner.headers)
    assert len(listed.json()) == 1  # nothing was removed

    finance = await add_member(api, org.owner, "finance")
    response = await api.post(f"/v1/invoices/{invoice_id}/checkout", headers=finance.headers)
    assert response.status_code == 200, response.text


async def _invoice_row(app_sessions: AppSessions, org_id: UUID, invoice_id: UUID) -> Invoice:
    async with app_sessions.scoped(org_id) as s:
        found = await s.get(Invoice, invoice_id)
        assert found is not None
        return found
