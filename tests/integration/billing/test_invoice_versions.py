"""Optimistic concurrency on PATCH /v1/invoices/{id}: the ETag of a read is the invoice's version;
a change sent with If-Match applies only to that version (412 precondition-failed otherwise, the
invoice untouched), so of two editors who read the same copy only the first wins, even at once."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.support.factories.billing import api_draft
from tests.support.identity import signup


async def test_a_change_from_a_stale_copy_is_refused_with_412(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    got = await client.get(url, headers=owner.headers)
    assert got.headers["etag"] == f'"{got.json()["version"]}"'
    tag = got.headers["etag"]

    first = await client.patch(url, json={"notes": "gate code 1234"}, headers={**owner.headers, "If-Match": tag})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == f'"{first.json()["version"]}"' != tag

    stale = await client.patch(url, json={"notes": "ring twice"}, headers={**owner.headers, "If-Match": tag})
    assert stale.status_code == 412, stale.text
    problem = stale.json()
    assert problem["type"] == "/problems/precondition-failed"
    assert problem["current_version"] == first.json()["version"]
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.headers["etag"] == first.headers["etag"]
    assert (await client.get(url, headers=owner.headers)).json()["notes"] == "gate code 1234"

    # The current tag among several, or *, matches; a weak tag never does (If-Match compares strongly).
    current = first.headers["etag"]
    listed = await client.patch(url, json={"notes": "a"}, headers={**owner.headers, "If-Match": f'"0", {current}'})
    assert listed.status_code == 200, listed.text
    weak = await client.patch(
        url, json={"notes": "b"}, headers={**owner.headers, "If-Match": f"W/{listed.headers['etag']}"}
    )
    assert weak.status_code == 412
    star = await client.patch(url, json={"notes": "c"}, headers={**owner.headers, "If-Match": "*"})
    assert star.status_code == 200
    # Without If-Match the change applies to whatever is current (clients that do not send it).
    blind = await client.patch(url, json={"notes": "d"}, headers=owner.headers)
    assert blind.status_code == 200 and blind.json()["notes"] == "d"

    for bad in ("4", '"4', "W/", ","):
        response = await client.patch(url, json={"notes": "e"}, headers={**owner.headers, "If-Match": bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "If-Match"


async def test_two_editors_of_the_same_copy_at_once_only_one_wins(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    tag = (await client.get(url, headers=owner.headers)).headers["etag"]
    start = asyncio.Event()

    async def edit(cents: int):
        await start.wait()
        body = {"lines": [{"description": "Clean", "unit_cents": cents}]}
        return await client.patch(url, json=body, headers={**owner.headers, "If-Match": tag})

    tasks = [asyncio.create_task(edit(c)) for c in (10_000, 20_000, 30_000)]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 2}, [r.text for r in responses]
    [winner] = [r.json() for r in responses if r.status_code == 200]
    after = (await client.get(url, headers=owner.headers)).json()
    assert after["total_cents"] == winner["total_cents"] and after["version"] == winner["version"]


async def test_an_issued_invoice_changed_by_a_payment_has_a_new_etag(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    issued = await client.post(f"{url}/issue", headers=owner.headers)
    before = (await client.get(url, headers=owner.headers)).headers["etag"]
    assert before == f'"{issued.json()["version"]}"'
    paid = await client.post(f"{url}/payments", json={"amount_cents": 100, "method": "cash"}, headers=owner.headers)
    assert paid.status_code == 201, paid.text
    after = await client.get(url, headers=owner.headers)
    assert after.headers["etag"] != before
    # A stale copy of an issued invoice is refused as stale (412) before its state is judged.
    stale = await client.patch(url, json={"notes": "x"}, headers={**owner.headers, "If-Match": before})
    assert stale.status_code == 412
    fresh = await client.patch(url, json={"notes": "x"}, headers={**owner.headers, "If-Match": after.headers["etag"]})
    assert fresh.status_code == 409 and fresh.json()["type"] == "/problems/invoice-not-draft"
