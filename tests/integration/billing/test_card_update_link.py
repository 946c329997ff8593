"""The card-update link: a follow-up step's client message carries a pay link and a card-update
link on the app's pay page (BILLING_PAY_LINK_URL), both on one token minted when the message is built (only its hash stored, never in the outbox, the audit
or a log), and POST /v1/pay/{token}/card-setup opens a setup-mode Checkout for the invoice's
client, without an account, with the local fake of Stripe at the far end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain import registry
from spotless.domain.billing.cards import apply_setup_completed
from spotless.domain.billing.followup import followup_due
from spotless.domain.billing.models import BillingSettings
from spotless.domain.billing.stripe_client import reset_stripe
from spotless.domain.messaging.kinds import get_kind
from spotless.domain.messaging.models import Delivery
from spotless.domain.messaging.notifications.billing_messages import FOLLOWUP
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.factories import AppSessions, arrange, new_client, new_issued_invoice
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env  # noqa: F401
from tests.support.identity import Member, signup

registry.import_jobs()
PAY_PAGE = "https://app.shine.example/pay"


@pytest.fixture
def stripe_settings(fake_stripe: FakeStripe) -> Settings:  # noqa: F811
    return make_settings(**stripe_env(fake_stripe, STRIPE_TIMEOUT_SECONDS="1.5", BILLING_PAY_LINK_URL=PAY_PAGE))


@pytest.fixture
async def api(stripe_settings: Settings) -> AsyncIterator[Client]:
    reset_stripe()
    async with app_client(create_app(stripe_settings)) as client:
        yield client
    reset_stripe()


@pytest.fixture
async def runtime(stripe_settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(stripe_settings, application_name="spotless-tests-card-link")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@dataclass(frozen=True)
class Built:
    """What the client's follow-up message was built with (at send time), as its template sees it."""

    pay_url: str
    card_update_url: str

    @property
    def token(self) -> str:
        return self.pay_url.rsplit("/", 1)[-1]


async def _build_client_message(runtime: Any, org_id: Any) -> Built:
    """The client's follow-up delivery, built as the delivery job builds it (links minted now)."""
    async with runtime.session(org_id) as s:
        params = await s.scalar(select(Delivery.params).where(Delivery.kind == FOLLOWUP).limit(1))
        context = await get_kind(FOLLOWUP).build_context(s, org_id, params)
    assert context is not None
    return Built(pay_url=context["pay_url"], card_update_url=context["card_update_url"])


async def _connected(api: Client, fake: FakeStripe) -> tuple[Member, str]:
    owner = await signup(api, name="Shine Co")
    response = await api.post("/v1/billing/stripe/connect", headers=owner.headers)
    assert response.status_code == 200, response.text
    account_id = response.json()["account"]["account_id"]
    fake.update_account(account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True)
    assert (await api.get("/v1/billing/stripe/account", headers=owner.headers)).json()["status"] == "active"
    return owner, account_id


async def _chased_invoice(owner_engine: AsyncEngine, owner: Member) -> Any:
    async with arrange(owner_engine) as db:
        db.add(BillingSettings(org_id=owner.org_id, followup_days=[1, 4]))
        person = await new_client(db, owner.org_id, name="Ada Client", email="ada@example.com")
        invoice = await new_issued_invoice(db, owner.org_id, person.id)
    payload = {"org_id": str(owner.org_id), "invoice_id": str(invoice.id), "client_id": str(person.id)}
    await JOBS["billing.start_followup"].fn("billing.PaymentFailed", "event-1", payload)
    return invoice


async def _dump(owner_engine: AsyncEngine, *tables: str) -> str:
    async with owner_engine.connect() as conn:
        parts = [
            "\n".join((await conn.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))).scalars().all())
            for table in tables
        ]
    return "\n".join(parts)


async def test_each_step_sends_a_pay_link_and_a_card_update_link_minted_when_sent(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
    app_sessions: AppSessions,
    runtime: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner, account_id = await _connected(api, fake_stripe)
    invoice = await _chased_invoice(owner_engine, owner)
    await followup_due(now=(datetime.now(UTC) + timedelta(days=1, minutes=1)).isoformat())
    async with owner_engine.connect() as conn:
        rows = list(
            await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'billing.send_followup_step'"))
        )
        links_before = await conn.scalar(text("SELECT count(*) FROM invoice_links"))
    assert len(rows) == 1 and links_before == 0  # nothing minted until the step is sent

    caplog.set_level(logging.DEBUG)
    for _ in range(2):  # a redelivered step requests nothing twice
        await JOBS["billing.send_followup_step"].fn(*rows[0].args)
    async with owner_engine.connect() as conn:
        requested = await conn.scalar(
            text("SELECT count(DISTINCT send_key) FROM deliveries WHERE kind = :k"), {"k": FOLLOWUP}
        )
        assert requested == 1  # one request for the step (a row per channel it may use)
        assert await conn.scalar(text("SELECT count(*) FROM invoice_links")) == 0  # minted at send time only
    # A delivery retried after a failed send builds again: another link (harmless), each its own.
    built = [await _build_client_message(runtime, owner.org_id) for _ in range(2)]
    first, second = built
    assert first.token != second.token
    for notice in built:
        assert notice.pay_url == f"{PAY_PAGE}/{notice.token}"
        assert notice.card_update_url == f"{PAY_PAGE}/{notice.token}/card"

    # Only the tokens' hashes rest anywhere; no log line carries one.
    stored = await _dump(owner_engine, "invoice_links", "job_outbox", "admin_audit_logs")
    assert not any(n.token in stored for n in built)
    assert not any(n.token in record.getMessage() for n in built for record in caplog.records)
    async with owner_engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT count(*) FROM invoice_links WHERE invoice_id = :i"), {"i": invoice.id}) == 2
        )

    # The links work: the invoice shows, and the card-update link opens a setup Checkout for its client.
    token = first.token
    shown = await api.get(f"/v1/pay/{token}")
    assert shown.status_code == 200 and shown.json()["number"] == invoice.display_number
    opened = await api.post(f"/v1/pay/{token}/card-setup")  # no credentials: the link is enough
    assert opened.status_code == 200, opened.text
    assert opened.headers["cache-control"] == "no-store"
    (session,) = fake_stripe.objects("checkout.session", account_id)
    assert session["url"] == opened.json()["url"] and session["mode"] == "setup"
    assert session["client_reference_id"] == str(invoice.client_id)
    assert session["metadata"]["invoice_id"] == str(invoice.id) and session["metadata"]["requested_by"] == "pay_link"
    assert "Shine Co" in session["metadata"]["consent_text"]

    done = fake_stripe.complete_session(session["id"])
    intent = fake_stripe.get(done["setup_intent"], account_id)
    method = fake_stripe.get(intent["payment_method"], account_id)
    async with app_sessions.scoped(owner.org_id) as s:  # what the checkout.session.completed handler does
        saved = await apply_setup_completed(s, owner.org_id, done, method)
    assert saved is not None and saved.client_id == invoice.client_id
    cards = await api.get(f"/v1/clients/{invoice.client_id}/payment-methods", headers=owner.headers)
    assert [c["last4"] for c in cards.json()] == [saved.last4]
    audit = await _dump(owner_engine, "admin_audit_logs")
    assert "billing.card_setup.start" in audit and token not in audit


async def test_a_dead_link_opens_no_card_setup_and_a_shop_without_stripe_answers_409(
    api: Client,
    fake_stripe: FakeStripe,  # noqa: F811
    owner_engine: AsyncEngine,
) -> None:
    unknown = await api.post(f"/v1/pay/{'C' * 43}/card-setup")
    assert unknown.status_code == 404 and unknown.json()["instance"] == "/v1/pay/{token}"

    owner = await signup(api, name="No Stripe Co")
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Bo Client")
        invoice = await new_issued_invoice(db, owner.org_id, person.id)
    made = await api.post(f"/v1/invoices/{invoice.id}/links", json={}, headers=owner.headers)
    token = made.json()["token"]
    response = await api.post(f"/v1/pay/{token}/card-setup")
    assert response.status_code == 409 and response.json()["type"] == "/problems/payments-not-enabled"
    assert token not in response.text

    link_id = (await api.get(f"/v1/invoices/{invoice.id}/links", headers=owner.headers)).json()[0]["id"]
    await api.post(f"/v1/invoices/{invoice.id}/links/{link_id}/revoke", headers=owner.headers)
    revoked = await api.post(f"/v1/pay/{token}/card-setup")
    assert revoked.status_code == 404
    assert {k: v for k, v in revoked.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }
