"""Through the API, at the same moment: twenty issues number 1..20, two payments of the whole
amount record one, two credit notes that together exceed the invoice credit one."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.support.factories.billing import api_draft
from tests.support.identity import signup


async def _together(calls: list[Any]) -> list[Any]:
    start = asyncio.Event()

    async def run(call: Any) -> Any:
        await start.wait()
        return await call()

    tasks = [asyncio.create_task(run(c)) for c in calls]
    await asyncio.sleep(0.05)
    start.set()
    return await asyncio.gather(*tasks)


async def test_twenty_simultaneous_issues_are_numbered_one_to_twenty(client) -> None:
    owner = await signup(client)
    drafts = [await api_draft(client, owner) for _ in range(20)]
    responses = await _together(
        [lambda d=d: client.post(f"/v1/invoices/{d['id']}/issue", headers=owner.headers) for d in drafts]
    )
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]
    assert sorted(r.json()["number"] for r in responses) == list(range(1, 21))


async def test_two_simultaneous_full_payments_record_one(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    issued = (await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)).json()
    body = {"amount_cents": issued["total_cents"], "method": "etransfer"}
    responses = await _together(
        [lambda: client.post(f"/v1/invoices/{draft['id']}/payments", json=body, headers=owner.headers)] * 2
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 1}
    after = (await client.get(f"/v1/invoices/{draft['id']}", headers=owner.headers)).json()
    assert (after["status"], after["paid_cents"]) == ("paid", issued["total_cents"])


async def test_two_simultaneous_credit_notes_never_exceed_the_invoice(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner, lines=[{"description": "Clean", "unit_cents": 10_000}])
    await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)
    body = {"lines": [{"description": "Most of it", "unit_cents": 6_000}], "reason": "complaint"}
    responses = await _together(
        [lambda: client.post(f"/v1/invoices/{draft['id']}/credit-notes", json=body, headers=owner.headers)] * 2
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 1}
    notes = (await client.get("/v1/invoices?kind=credit_note", headers=owner.headers)).json()["items"]
    assert [n["total_cents"] for n in notes] == [6_000]
