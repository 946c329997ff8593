"""A client's credit (an overpayment kept as credit, a credit note beyond what its invoice owed)
pays that client's next invoices when they are issued: in the ledger (`credit_applied`), at most
what is left and what the invoice owes, once per invoice, and never the same credit twice when
invoices are issued at the same moment. Another client's credit is never touched."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.ledger import Entry, apply_client_credit, client_credit_cents, post
from spotless.domain.billing.models import Invoice, LedgerEntry
from tests.support.factories import arrange
from tests.support.factories.billing import api_draft
from tests.support.identity import Member, add_member, signup


async def _issue(client: Any, owner: Member, draft: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _overpaid(client: Any, owner: Member, *, owed: int, paid: int) -> dict[str, Any]:
    """An issued invoice paid `paid` (> `owed`), the excess kept as the client's credit."""
    invoice = await _issue(
        client, owner, await api_draft(client, owner, lines=[{"description": "A", "unit_cents": owed}])
    )
    kept = await client.post(
        f"/v1/invoices/{invoice['id']}/payments",
        json={"amount_cents": paid, "method": "cash", "keep_as_credit": True},
        headers=owner.headers,
    )
    assert kept.status_code == 201, kept.text
    return invoice


async def _credit(owner_engine: AsyncEngine, org_id: Any, client_id: Any) -> int:
    async with arrange(owner_engine) as db:
        return await client_credit_cents(db, org_id, client_id)


async def _applied(owner_engine: AsyncEngine, invoice_id: str) -> list[int]:
    async with arrange(owner_engine) as db:
        rows = await db.scalars(
            select(LedgerEntry.amount_cents).where(
                LedgerEntry.invoice_id == invoice_id, LedgerEntry.kind == "credit_applied"
            )
        )
        return list(rows)


async def test_credit_pays_the_clients_next_invoices_until_it_is_spent(client, owner_engine) -> None:
    owner = await signup(client)
    first = await _overpaid(client, owner, owed=10_000, paid=15_000)
    client_id = first["client_id"]
    assert await _credit(owner_engine, owner.org_id, client_id) == 5_000

    lines = [{"description": "B", "unit_cents": 3_000}]
    second = await _issue(client, owner, await api_draft(client, owner, client_id=client_id, lines=lines))
    assert (second["status"], second["paid_cents"], second["open_cents"]) == ("paid", 3_000, 0)
    assert await _credit(owner_engine, owner.org_id, client_id) == 2_000

    lines = [{"description": "C", "unit_cents": 10_000}]
    third = await _issue(client, owner, await api_draft(client, owner, client_id=client_id, lines=lines))
    assert (third["status"], third["paid_cents"], third["open_cents"]) == ("partially_paid", 2_000, 8_000)
    assert await _credit(owner_engine, owner.org_id, client_id) == 0
    assert await _applied(owner_engine, third["id"]) == [2_000]

    # Nothing left: the next invoice is owed in full, and another client never had the credit.
    fourth = await _issue(client, owner, await api_draft(client, owner, client_id=client_id))
    assert fourth["paid_cents"] == 0 and await _applied(owner_engine, fourth["id"]) == []
    stranger = await _issue(client, owner, await api_draft(client, owner))
    assert stranger["status"] == "issued" and stranger["paid_cents"] == 0

    # Credit that arises while an invoice is open is applied to it on request (finance.manage).
    async with arrange(owner_engine) as db:
        await post(
            db,
            Entry(org_id=owner.org_id, client_id=client_id, kind="credit_issued", amount_cents=1_000, source="system"),
        )
    url = f"/v1/invoices/{third['id']}/apply-credit"
    viewer = await add_member(client, owner, "viewer")
    assert (await client.post(url, headers=viewer.headers)).status_code == 403
    stranger = await signup(client)
    assert (await client.post(url, headers=stranger.headers)).status_code == 404
    applied = await client.post(url, headers=owner.headers)
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert (body["applied_cents"], body["client_credit_cents"]) == (1_000, 0)
    assert (body["invoice"]["paid_cents"], body["invoice"]["open_cents"]) == (3_000, 7_000)
    again = await client.post(url, headers=owner.headers)
    assert again.status_code == 409 and again.json()["type"] == "/problems/no-client-credit"
    settled = await client.post(f"/v1/invoices/{second['id']}/apply-credit", headers=owner.headers)
    assert settled.status_code == 409 and settled.json()["type"] == "/problems/invoice-not-payable"
    assert await _applied(owner_engine, third["id"]) == [2_000, 1_000]
    assert await _credit(owner_engine, owner.org_id, client_id) == 0
    # The service never applies more than there is, whoever calls it.
    async with arrange(owner_engine) as db:
        row = await db.get(Invoice, fourth["id"])
        assert row is not None and await apply_client_credit(db, row) == 0


async def test_a_credit_note_beyond_what_was_owed_pays_the_next_invoice(client, owner_engine) -> None:
    owner = await signup(client)
    paid = await _issue(
        client, owner, await api_draft(client, owner, lines=[{"description": "A", "unit_cents": 8_000}])
    )
    url = f"/v1/invoices/{paid['id']}/payments"
    assert (
        await client.post(url, json={"amount_cents": 8_000, "method": "etransfer"}, headers=owner.headers)
    ).is_success
    note = await client.post(
        f"/v1/invoices/{paid['id']}/credit-notes",
        json={"lines": [{"description": "Missed room", "unit_cents": 2_500}], "reason": "complaint"},
        headers=owner.headers,
    )
    assert note.status_code == 201, note.text
    assert await _credit(owner_engine, owner.org_id, paid["client_id"]) == 2_500
    lines = [{"description": "Next visit", "unit_cents": 9_000}]
    nxt = await _issue(client, owner, await api_draft(client, owner, client_id=paid["client_id"], lines=lines))
    assert (nxt["paid_cents"], nxt["open_cents"]) == (2_500, 6_500)
    assert await _credit(owner_engine, owner.org_id, paid["client_id"]) == 0


async def test_invoices_issued_at_once_never_spend_the_same_credit(client, owner_engine) -> None:
    owner = await signup(client)
    first = await _overpaid(client, owner, owed=1_000, paid=6_000)
    client_id = first["client_id"]
    lines = [{"description": "Visit", "unit_cents": 4_000}]
    drafts = [await api_draft(client, owner, client_id=client_id, lines=lines) for _ in range(4)]
    start = asyncio.Event()

    async def issue(draft: dict[str, Any]) -> Any:
        await start.wait()
        return await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)

    tasks = [asyncio.create_task(issue(d)) for d in drafts]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    paid = sorted(r.json()["paid_cents"] for r in responses)
    # 5 000 of credit over four invoices of 4 000: spent exactly, in at most two of them.
    assert sum(paid) == 5_000 and paid == [0, 0, 1_000, 4_000]
    assert await _credit(owner_engine, owner.org_id, client_id) == 0


async def test_credit_applied_to_open_invoices_at_once_is_spent_once(client, owner_engine) -> None:
    owner = await signup(client)
    lines = [{"description": "Visit", "unit_cents": 4_000}]
    first = await _issue(client, owner, await api_draft(client, owner, lines=lines))
    client_id = first["client_id"]
    others = [
        await _issue(client, owner, await api_draft(client, owner, client_id=client_id, lines=lines)) for _ in range(3)
    ]
    kept = await client.post(
        f"/v1/invoices/{first['id']}/payments",
        json={"amount_cents": 9_000, "method": "cheque", "keep_as_credit": True},
        headers=owner.headers,
    )
    assert kept.status_code == 201 and kept.json()["client_credit_cents"] == 5_000
    start = asyncio.Event()

    async def apply(invoice: dict[str, Any]) -> Any:
        await start.wait()
        return await client.post(f"/v1/invoices/{invoice['id']}/apply-credit", headers=owner.headers)

    tasks = [asyncio.create_task(apply(i)) for i in others]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    applied = sorted(r.json()["applied_cents"] for r in responses if r.status_code == 200)
    assert applied == [1_000, 4_000], [r.text for r in responses]
    assert sorted(r.status_code for r in responses) == [200, 200, 409]
    assert await _credit(owner_engine, owner.org_id, client_id) == 0


async def test_crediting_a_written_off_invoice_gives_credit_only_for_what_was_paid(client, owner_engine) -> None:
    owner = await signup(client)
    invoice = await _issue(
        client, owner, await api_draft(client, owner, lines=[{"description": "A", "unit_cents": 10_000}])
    )
    url = f"/v1/invoices/{invoice['id']}"
    paid = await client.post(f"{url}/payments", json={"amount_cents": 3_000, "method": "cash"}, headers=owner.headers)
    assert paid.status_code == 201, paid.text
    off = await client.post(f"{url}/uncollectible", json={"reason": "gone"}, headers=owner.headers)
    assert off.status_code == 200, off.text
    note = await client.post(
        f"{url}/credit-notes",
        json={"lines": [{"description": "All of it", "unit_cents": 10_000}], "reason": "settlement"},
        headers=owner.headers,
    )
    assert note.status_code == 201, note.text
    # The 7 000 never paid absorbs the credit first; only the 3 000 paid is the client's credit.
    assert await _credit(owner_engine, owner.org_id, invoice["client_id"]) == 3_000
    after = (await client.get(url, headers=owner.headers)).json()
    assert after["status"] == "uncollectible"
