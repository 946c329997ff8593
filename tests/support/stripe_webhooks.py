"""Stripe webhook deliveries as Stripe makes them: an event body, signed with the endpoint's secret
(`stripe.WebhookSignature.generate_signature_header`), posted to our endpoint; and the inbox jobs
those deliveries enqueue, run as the worker would."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.lib.inbox import PROCESS_JOB, process_inbox_event
from tests.support.identity import Member

WEBHOOK_SECRET = "whsec_test_spotless_0123456789abcdef"
WEBHOOK_PATH = "/v1/payments/stripe/webhook"

_counter = {"n": 0}


def event_body(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    account: str | None = None,
    created: int | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    _counter["n"] += 1
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    body: dict[str, Any] = {
        "id": event_id or f"evt_test_{int(time.time() * 1000)}_{_counter['n']}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": data,
    }
    if account is not None:
        body["account"] = account
    return body


def sign(raw: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(raw, secret, timestamp=timestamp)


async def deliver(
    client: httpx.AsyncClient,
    body: dict[str, Any] | str,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, str) else json.dumps(body)
    header = signature if signature is not None else sign(raw, secret=secret, timestamp=timestamp)
    headers = {"content-type": "application/json; charset=utf-8"}
    if header:
        headers["stripe-signature"] = header
    return await client.post(WEBHOOK_PATH, content=raw.encode(), headers=headers)


class InboxJobs:
    """The processing jobs deliveries enqueued, taken once each, in outbox order or any order given."""

    def __init__(self, owner_engine: AsyncEngine) -> None:
        self.owner_engine = owner_engine
        self.taken: set[Any] = set()

    async def take(self) -> list[str]:
        async with self.owner_engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, args FROM job_outbox WHERE actor_name = :job ORDER BY id"), {"job": PROCESS_JOB}
            )
            fresh = [(row_id, args) for row_id, args in rows.all() if row_id not in self.taken]
        self.taken.update(row_id for row_id, _ in fresh)
        return [args[0] for _, args in fresh]

    async def run(self, *, reverse: bool = False) -> int:
        ids = await self.take()
        for event_id in reversed(ids) if reverse else ids:
            with contextlib.suppress(Exception):
                await process_inbox_event(event_id)
        return len(ids)


async def inbox_rows(owner_engine: AsyncEngine) -> list[dict[str, Any]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, event_type, payload, outcome, handled_at, last_error FROM inbox_events"
                " WHERE source = 'stripe' ORDER BY received_at"
            )
        )
        return [dict(r._mapping) for r in rows.all()]


async def outbox_jobs(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE actor_name = :j"), {"j": PROCESS_JOB}))


# --- a connected organisation with an invoice, and payments made at the fake --------------------


@dataclass
class Shop:
    """An organisation (signed-up owner) with its Stripe account connected at the fake."""

    owner: Member
    account: str
    client_id: UUID

    @property
    def org_id(self) -> UUID:
        return self.owner.org_id


async def fake_call(
    fake: Any, method: str, path: str, data: dict[str, Any] | None = None, account: str | None = None
) -> dict[str, Any]:
    """The fake's API over HTTP, as our client would call it (form-encoded, bracket keys)."""
    headers = {"Authorization": "Bearer sk_test_fake_platform_key"}
    if account:
        headers["Stripe-Account"] = account
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        response = await http.request(method, path, data=_form(data or {}), headers=headers)
    assert response.status_code < 300, response.text
    return dict(response.json())


def _form(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            out.update(_form(value, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                out.update(_form({str(i): item}, name))
        else:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


async def connect_shop(client: httpx.AsyncClient, owner_engine: AsyncEngine, fake: Any) -> Shop:
    from spotless.domain.billing.models import StripeAccount
    from tests.support.factories import add, arrange, new_client
    from tests.support.identity import signup

    owner = await signup(client)
    account = await fake_call(fake, "POST", "/v1/accounts", {"type": "express", "country": "CA"})
    async with arrange(owner_engine) as db:
        await add(db, StripeAccount(org_id=owner.org_id, account_id=account["id"], status="pending"))
        shopper = await new_client(db, owner.org_id, name="Grace Payer", email="grace@example.com")
    return Shop(owner=owner, account=account["id"], client_id=shopper.id)


async def issued_invoice(owner_engine: AsyncEngine, shop: Shop, total_cents: int = 10_000, number: int = 1) -> UUID:
    from spotless.domain.billing.models import Invoice
    from tests.support.factories import add, arrange

    async with arrange(owner_engine) as db:
        invoice = await add(
            db,
            Invoice(
                org_id=shop.org_id,
                client_id=shop.client_id,
                series="2026",
                number=number,
                display_number=f"INV-2026-{number:06d}",
                status="issued",
                issued_at=datetime.now(UTC),
                currency="CAD",
                client_name="Grace Payer",
                subtotal_cents=total_cents,
                tax_cents=0,
                total_cents=total_cents,
            ),
        )
    return invoice.id


async def open_checkout(fake: Any, shop: Shop, invoice_id: UUID, amount_cents: int = 10_000) -> str:
    """A Checkout Session at the fake carrying the invoice reference as ours do."""
    ref = {"invoice_id": str(invoice_id), "org_id": str(shop.org_id)}
    session = await fake_call(
        fake,
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "payment",
            "success_url": "http://localhost/pay/success",
            "client_reference_id": str(invoice_id),
            "metadata": ref,
            "payment_intent_data": {"metadata": ref},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {"currency": "cad", "unit_amount": amount_cents, "product_data": {"name": "Invoice"}},
                }
            ],
        },
        account=shop.account,
    )
    return str(session["id"])


async def deliver_event(client: httpx.AsyncClient, fake: Any, event: dict[str, Any] | str) -> httpx.Response:
    """POST one of the fake's events to our endpoint, signed as Stripe signs it."""
    body, headers = fake.signed_event(event)
    return await client.post(WEBHOOK_PATH, content=body, headers=headers)


async def scalar(owner_engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner_engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def rows(owner_engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with owner_engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text(sql), params)).all()]
