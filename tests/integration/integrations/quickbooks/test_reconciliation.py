"""The reconciliation report and the office's answers, through the API: a customer whose name exists
in QuickBooks (6240) waits for link-or-rename and is never created twice; the report lists what is
in sync, what differs and what failed with why; retry pushes an item again; another organisation
sees none of it."""

from __future__ import annotations

from typing import Any

from spotless.domain.integrations.quickbooks.actors import qbo_push_waiting, sync_due
from tests.fakes.quickbooks import FakeQuickBooks
from tests.integration.integrations.quickbooks.conftest import (
    REALM,
    Books,
    books,
    due_again,
    issued_invoice,
    links,
)
from tests.support.factories import arrange
from tests.support.factories.clients import new_client
from tests.support.identity import Member, add_member, signup

REPORT = "/v1/quickbooks/reconciliation"


async def report(client: Any, member: Member, **params: str) -> dict[str, Any]:
    answer = await client.get(REPORT, params=params, headers=member.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def item_of(body: dict[str, Any], kind: str, our_id: Any) -> dict[str, Any]:
    [found] = [i for i in body["items"] if i["kind"] == kind and i["our_id"] == str(our_id)]
    return found


async def office(client: Any, owner_engine: Any, settings: Any) -> tuple[Member, Books]:
    owner = await signup(client, name="Ledger Cleaning")
    return owner, await books(owner_engine, settings, org_id=owner.org_id)


async def test_a_duplicate_name_waits_for_the_office_to_link_never_a_second_customer(
    client, owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    owner, b = await office(client, owner_engine, qbo_settings)
    existing = fake_qbo.add(REALM, "Customer", DisplayName="ada client")
    invoice_id = await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    assert fake_qbo.all(REALM, "Customer") == [existing] and fake_qbo.all(REALM, "Invoice") == []

    body = await report(client, owner)
    assert body["summary"] == {"in_sync": 0, "differs": 0, "failed": 2, "pending": 0}
    assert body["connection"]["realm_id"] == REALM and body["connection"]["status"] == "active"
    customer = item_of(body, "customer", b.client_id)
    assert customer["state"] == "needs_choice" and customer["error"]["code"] == "6240"
    assert customer["existing_qbo_id"] == existing["Id"] and customer["actions"] == ["link", "rename"]
    assert "Ada Client" in customer["error"]["message"]
    invoice = item_of(body, "invoice", invoice_id)
    assert invoice["state"] == "failed" and invoice["error"]["code"] == "customer"
    # A pass meanwhile creates nothing: no second customer by the same name, ever.
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    assert len(fake_qbo.creates("customer")) == 1
    # Retry is not the answer to a name clash.
    refused = await client.post(f"/v1/quickbooks/items/{customer['id']}/retry", headers=owner.headers)
    assert refused.status_code == 409, refused.text

    linked = await client.post(
        f"/v1/quickbooks/items/{customer['id']}/resolve", json={"action": "link"}, headers=owner.headers
    )
    assert linked.status_code == 202, linked.text
    assert linked.json()["item"]["state"] == "pending" and linked.json()["item"]["qbo_id"] == existing["Id"]
    await qbo_push_waiting(b.org_id, b.connection_id, REALM)

    assert len(fake_qbo.all(REALM, "Customer")) == 1 and len(fake_qbo.creates("customer")) == 1
    [pushed] = fake_qbo.all(REALM, "Invoice")
    assert pushed["CustomerRef"]["value"] == existing["Id"]
    body = await report(client, owner)
    assert body["summary"] == {"in_sync": 2, "differs": 0, "failed": 0, "pending": 0}
    assert item_of(body, "invoice", invoice_id)["qbo_id"] == pushed["Id"]
    # Once linked, matched by id only: a name change here updates that customer, it does not search.
    again = await client.post(
        f"/v1/quickbooks/items/{customer['id']}/resolve", json={"action": "link"}, headers=owner.headers
    )
    assert again.status_code == 409 and again.json()["type"] == "/problems/qbo-no-choice-pending"


async def test_rename_pushes_the_client_under_a_unique_name(
    client, owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    owner, b = await office(client, owner_engine, qbo_settings)
    fake_qbo.add(REALM, "Customer", DisplayName="Ada Client")
    await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    customer = item_of(await report(client, owner, group="failed"), "customer", b.client_id)
    renamed = await client.post(
        f"/v1/quickbooks/items/{customer['id']}/resolve",
        json={"action": "rename"},
        headers=owner.headers,
    )
    assert renamed.status_code == 202, renamed.text
    name = f"Ada Client (client {str(b.client_id)[-8:]})"
    assert renamed.json()["item"]["display_name"] == name
    await qbo_push_waiting(b.org_id, b.connection_id, REALM)
    names = sorted(c["DisplayName"] for c in fake_qbo.all(REALM, "Customer"))
    assert names == ["Ada Client", name]
    assert len(fake_qbo.all(REALM, "Invoice")) == 1
    assert (await report(client, owner))["summary"]["in_sync"] == 2


async def test_link_to_a_customer_another_client_has_is_refused(
    client, owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    owner, b = await office(client, owner_engine, qbo_settings)
    await issued_invoice(owner_engine, b, 1)
    await sync_due(runtime)
    [ada] = fake_qbo.all(REALM, "Customer")
    async with arrange(owner_engine) as db:
        twin = await new_client(db, b.org_id, name="Ada Client")
    await issued_invoice(owner_engine, b, 2, client_id=twin.id)
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)
    customer = item_of(await report(client, owner), "customer", twin.id)
    assert customer["state"] == "needs_choice" and customer["existing_qbo_id"] == ada["Id"]
    taken = await client.post(
        f"/v1/quickbooks/items/{customer['id']}/resolve", json={"action": "link"}, headers=owner.headers
    )
    assert taken.status_code == 409 and taken.json()["type"] == "/problems/qbo-customer-already-linked"
    assert len(fake_qbo.all(REALM, "Customer")) == 1


async def test_the_report_lists_differences_and_failures_and_retry_pushes_again(
    client, owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    owner, b = await office(client, owner_engine, qbo_settings)
    paid_there = await issued_invoice(owner_engine, b, 1)
    collides = await issued_invoice(owner_engine, b, 2)
    fine = await issued_invoice(owner_engine, b, 3)
    someone = fake_qbo.add(REALM, "Customer", DisplayName="Someone")
    taken = fake_qbo.add(REALM, "Invoice", DocNumber="INV-000002", CustomerRef={"value": someone["Id"]}, Line=[])
    await sync_due(runtime)
    paid_link = (await links(owner_engine, b.org_id))[("invoice", str(paid_there))]
    ada = next(c for c in fake_qbo.all(REALM, "Customer") if c["DisplayName"] == "Ada Client")
    fake_qbo.add(
        REALM,
        "Payment",
        CustomerRef={"value": ada["Id"]},
        TotalAmt=125.0,
        Line=[{"Amount": 125.0, "LinkedTxn": [{"TxnId": paid_link.qbo_id, "TxnType": "Invoice"}]}],
    )
    await due_again(owner_engine, b.connection_id)
    await sync_due(runtime)

    body = await report(client, owner)
    assert body["summary"] == {"in_sync": 2, "differs": 1, "failed": 1, "pending": 0}
    differs = item_of(body, "invoice", paid_there)
    assert differs["group"] == "differs" and differs["actions"] == ["retry"]
    assert {d["field"]: [d["ours"], d["theirs"]] for d in differs["differences"]} == {
        "open_cents": [12_500, 0],
        "status": ["open", "paid"],
    }
    failed = item_of(body, "invoice", collides)
    assert failed["group"] == "failed" and failed["error"]["code"] == "6140"
    assert "INV-000002" in failed["error"]["message"] and failed["actions"] == ["retry"]
    assert item_of(body, "invoice", fine)["group"] == "in_sync"
    only_failed = await report(client, owner, group="failed")
    assert [i["our_id"] for i in only_failed["items"]] == [str(collides)]
    assert [i["kind"] for i in (await report(client, owner, kind="customer"))["items"]] == ["customer"]
    # Paged by cursor.
    first = await report(client, owner, limit="2")
    assert first["has_more"] and len(first["items"]) == 2
    rest = await report(client, owner, limit="2", cursor=first["next_cursor"])
    assert not rest["has_more"] and len(rest["items"]) == 2
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in rest["items"]})

    fake_qbo.delete(REALM, "Invoice", taken["Id"])
    retried = await client.post(f"/v1/quickbooks/items/{failed['id']}/retry", headers=owner.headers)
    assert retried.status_code == 202, retried.text
    assert retried.json()["item"]["state"] == "pending"
    twice = await client.post(f"/v1/quickbooks/items/{failed['id']}/retry", headers=owner.headers)
    assert twice.status_code == 409
    await qbo_push_waiting(b.org_id, b.connection_id, REALM)
    body = await report(client, owner)
    assert item_of(body, "invoice", collides)["group"] == "in_sync"
    assert body["summary"] == {"in_sync": 3, "differs": 1, "failed": 0, "pending": 0}


async def test_another_organisation_sees_none_of_it(
    client, owner_engine, runtime, qbo_settings, fake_qbo: FakeQuickBooks
) -> None:
    owner, b = await office(client, owner_engine, qbo_settings)
    fake_qbo.add(REALM, "Customer", DisplayName="Ada Client")
    await issued_invoice(owner_engine, b)
    await sync_due(runtime)
    items = (await report(client, owner))["items"]
    assert len(items) == 2
    stranger = await signup(client, name="Other Cleaning")
    theirs = await report(client, stranger)
    assert theirs["items"] == [] and theirs["connection"] is None
    assert theirs["summary"] == {"in_sync": 0, "differs": 0, "failed": 0, "pending": 0}
    for item in items:
        for action, body in (("retry", None), ("resolve", {"action": "rename"})):
            answer = await client.post(
                f"/v1/quickbooks/items/{item['id']}/{action}", json=body, headers=stranger.headers
            )
            assert answer.status_code == 404, answer.text
    # Within the organisation, only owners and admins (integrations.manage).
    dispatcher = await add_member(client, owner, "dispatcher")
    assert (await client.get(REPORT, headers=dispatcher.headers)).status_code == 403
    assert (await links(owner_engine, b.org_id))[("customer", str(b.client_id))].state == "needs_choice"
