"""POST /v1/pay/{token}/checkout: the client pays from the public link, with the local fake of
Stripe at the far end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.billing.models import Invoice
from spotless.domain.billing.stripe_client import reset_stripe
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.factories import arrange, new_client, new_issued_invoice
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env  # noqa: F401
from tests.support.identity import Member, signup


@pytest.fixture
def stripe_settings(fake_stripe: FakeStripe) -> Settings:  # noqa: F811
    return make_settings(**stripe_env(fake_stripe, STRIPE_TIMEOUT_SECONDS="1.5"))


@pytest.fixture
async def api(stripe_settings: Settings) -> AsyncIterator[Client]:
    reset_stripe()
    async with app_client(create_app(stripe_settings)) as client:
        yield client
    reset_stripe()


async def _connected(api: Client, fake: FakeStripe, *, enable: bool = True) -> tuple[Member, str]:
    owner = await signup(api, name="Shine Co")
    response = await api.post("/v1/billing/stripe/connect", headers=owner.headers)
    assert response.status_code == 200, response.text
    account_id = response.json()["account"]["account_id"]
    if enable:
        fake.update_account(account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True)
        assert (await api.get("/v1/billing/stripe/account", headers=owner.headers)).json()["status"] == "active"
    return owner, account_id


async def _linked_invoice(api: Client, owner_engine: AsyncEngine, owner: Member, **fields: Any) -> tuple[Any, str]:
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Ada Client", email="ada@example.com")
        invoice = await new_issued_invoice(db, owner.org_id, person.id, **fields)
    response = await api.post(f"/v1/invoices/{invoice.id}/links", json={}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return invoice, response.json()["token"]


async def test_the_client_pays_the_open_amount_from_the_link(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    owner, account_id = await _connected(api, fake_stripe)
    invoice, token = await _linked_invoice(api, owner_engine, owner, paid_cents=26_00, status="partially_paid")

    first = await api.post(f"/v1/pay/{token}/checkout")  # no credentials: the link is enough
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert (body["amount_cents"], body["currency"], body["reused"]) == (200_00, "CAD", False)
    (session,) = fake_stripe.objects("checkout.session", account_id)
    assert session["url"] == body["url"] and session["client_reference_id"] == str(invoice.id)

    again = await api.post(f"/v1/pay/{token}/checkout")  # a second click reuses the open session
    assert again.status_code == 200 and again.json()["url"] == body["url"] and again.json()["reused"] is True
    assert len(fake_stripe.objects("checkout.session", account_id)) == 1

    async with owner_engine.connect() as conn:  # the audit trail names the session, never the link's token
        audit = (await conn.execute(text("SELECT row_to_json(a)::text FROM admin_audit_logs a"))).scalars().all()
    assert any("billing.checkout.open" in row for row in audit)
    assert not any(token in row for row in audit)


async def test_a_dead_link_or_nothing_to_pay_opens_no_checkout(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    owner, account_id = await _connected(api, fake_stripe)
    invoice, token = await _linked_invoice(api, owner_engine, owner)
    unknown = await api.post(f"/v1/pay/{'B' * 43}/checkout")
    assert unknown.status_code == 404 and unknown.json()["type"] == "/problems/not-found"

    async with arrange(owner_engine) as db:
        await db.execute(update(Invoice).where(Invoice.id == invoice.id).values(status="paid", paid_cents=226_00))
    paid = await api.post(f"/v1/pay/{token}/checkout")
    assert paid.status_code == 409 and paid.json()["type"] == "/problems/invoice-not-payable"
    assert paid.json()["instance"] == "/v1/pay/{token}" and token not in paid.text

    listed = await api.get(f"/v1/invoices/{invoice.id}/links", headers=owner.headers)
    link_id = listed.json()[0]["id"]
    revoke = await api.post(f"/v1/invoices/{invoice.id}/links/{link_id}/revoke", headers=owner.headers)
    assert revoke.status_code == 200
    revoked = await api.post(f"/v1/pay/{token}/checkout")
    assert revoked.status_code == 404
    assert {k: v for k, v in revoked.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }
    assert fake_stripe.objects("checkout.session", account_id) == []


async def test_an_organisation_not_set_up_for_cards_answers_409(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    owner = await signup(api, name="No Stripe Co")
    _, token = await _linked_invoice(api, owner_engine, owner)
    response = await api.post(f"/v1/pay/{token}/checkout")
    assert response.status_code == 409 and response.json()["type"] == "/problems/payments-not-enabled"
    shown = await api.get(f"/v1/pay/{token}")  # the invoice itself still shows
    assert shown.status_code == 200 and shown.json()["open_cents"] == 226_00
