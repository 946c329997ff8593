"""Manual payments (e-transfer, cash, cheque): the ledger moves the invoice's status, more than
is owed is refused or kept as the client's credit, and an Idempotency-Key makes a retry safe.
Billing settings are validated and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.models import LedgerEntry
from tests.support.factories import arrange
from tests.support.factories.billing import api_draft
from tests.support.identity import Member, signup


async def _issued(client: Any, owner: Member, cents: int = 10_000) -> dict[str, Any]:
    draft = await api_draft(client, owner, lines=[{"description": "Clean", "unit_cents": cents}])
    response = await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _entries(owner_engine: AsyncEngine, invoice_id: str) -> list[tuple[str, int, str | None]]:
    async with arrange(owner_engine) as db:
        rows = await db.execute(
            select(LedgerEntry.kind, LedgerEntry.amount_cents, LedgerEntry.reference)
            .where(LedgerEntry.invoice_id == invoice_id)
            .order_by(LedgerEntry.created_at)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_payments_move_the_invoice_to_partly_paid_then_paid(client, owner_engine) -> None:
    owner = await signup(client)
    invoice = await _issued(client, owner)
    url = f"/v1/invoices/{invoice['id']}/payments"
    first = await client.post(url, json={"amount_cents": 4_000, "method": "etransfer", "reference": "ET-991"},
                              headers=owner.headers)  # fmt: skip
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["invoice"]["status"], body["invoice"]["paid_cents"], body["invoice"]["open_cents"]) == (
        "partially_paid", 4_000, 6_000,
    )  # fmt: skip
    assert (body["applied_cents"], body["credited_cents"], body["client_credit_cents"]) == (4_000, 0, 0)
    second = await client.post(url, json={"amount_cents": 6_000, "method": "cheque", "reference": "CHQ 12"},
                               headers=owner.headers)  # fmt: skip
    assert second.json()["invoice"]["status"] == "paid"
    assert await _entries(owner_engine, invoice["id"]) == [("payment", 4_000, "ET-991"), ("payment", 6_000, "CHQ 12")]
    after = await client.post(url, json={"amount_cents": 1, "method": "cash"}, headers=owner.headers)
    assert after.status_code == 409 and after.json()["type"] == "/problems/invoice-not-payable"


async def test_an_overpayment_is_refused_or_kept_as_credit_never_lost(client, owner_engine) -> None:
    owner = await signup(client)
    invoice = await _issued(client, owner)
    url = f"/v1/invoices/{invoice['id']}/payments"
    refused = await client.post(url, json={"amount_cents": 15_000, "method": "cash"}, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/payment-exceeds-open-amount"
    assert refused.json()["open_cents"] == 10_000
    assert await _entries(owner_engine, invoice["id"]) == []
    kept = await client.post(url, json={"amount_cents": 15_000, "method": "cash", "keep_as_credit": True,
                                        "reference": "envelope"}, headers=owner.headers)  # fmt: skip
    assert kept.status_code == 201, kept.text
    body = kept.json()
    assert body["invoice"]["status"] == "paid" and body["invoice"]["paid_cents"] == 10_000
    assert (body["applied_cents"], body["credited_cents"], body["client_credit_cents"]) == (10_000, 5_000, 5_000)
    assert await _entries(owner_engine, invoice["id"]) == [
        ("payment", 10_000, "envelope"),
        ("credit_issued", 5_000, "envelope"),
    ]


async def test_a_retried_payment_with_the_same_key_is_recorded_once(client, owner_engine) -> None:
    owner = await signup(client)
    invoice = await _issued(client, owner)
    url = f"/v1/invoices/{invoice['id']}/payments"
    headers = {**owner.headers, "Idempotency-Key": "pay-once-1"}
    body = {"amount_cents": 2_500, "method": "etransfer", "reference": "ET-1"}
    first = await client.post(url, json=body, headers=headers)
    replay = await client.post(url, json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert await _entries(owner_engine, invoice["id"]) == [("payment", 2_500, "ET-1")]
    changed = await client.post(url, json={**body, "amount_cents": 1}, headers=headers)
    assert changed.status_code in (409, 422), changed.text


async def test_payment_validation(client, owner_engine) -> None:
    owner = await signup(client)
    invoice = await _issued(client, owner)
    url = f"/v1/invoices/{invoice['id']}/payments"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for body in (
        {"amount_cents": 0, "method": "cash"},
        {"amount_cents": 100, "method": "card"},
        {"amount_cents": 100, "method": "cash", "received_at": future},
        {"amount_cents": 100},
    ):
        response = await client.post(url, json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)
    assert await _entries(owner_engine, invoice["id"]) == []


async def test_billing_settings_defaults_update_and_validation(client, owner_engine) -> None:
    owner = await signup(client)
    got = (await client.get("/v1/billing/settings", headers=owner.headers)).json()
    assert got["invoicing_mode"] == "manual" and got["payment_terms_days"] == 14
    assert got["followup_days"] == [1, 3, 7, 14] and got["tax_region"] is None and got["number_prefix"] == "INV"
    for body in (
        {"tax_region": "XX"},
        {"followup_days": [3, 1]},
        {"followup_hold_after_step": 5},
        {"payment_terms_days": 400},
        {"invoicing_mode": "sometimes"},
        {"number_prefix": "inv-"},
        {"colour": "blue"},
    ):
        response = await client.put("/v1/billing/settings", json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["type"] == "/problems/validation-error"
    assert (await client.get("/v1/billing/settings", headers=owner.headers)).json() == got

    saved = await client.put(
        "/v1/billing/settings",
        json={"invoicing_mode": "per_period", "period": "weekly", "tax_region": "qc", "qst_number": "1234567890 TQ0001",
              "followup_days": [2, 5, 10], "followup_hold_after_step": 2},
        headers=owner.headers,
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    again = (await client.get("/v1/billing/settings", headers=owner.headers)).json()
    assert again["tax_region"] == "QC" and again["period"] == "weekly" and again["followup_hold_after_step"] == 2
    cleared = (await client.put("/v1/billing/settings", json={"qst_number": None}, headers=owner.headers)).json()
    assert cleared["qst_number"] is None and cleared["tax_region"] == "QC"
    async with arrange(owner_engine) as db:
        audited = await db.scalar(
            select(func.count())
            .select_from(text("admin_audit_logs"))
            .where(text("org_id = :o AND action = 'billing_settings.update'")),
            {"o": owner.org_id},
        )
    assert audited == 2
