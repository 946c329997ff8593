"""/v1/invoices through the API: drafts (by hand and from completed visits), issuing with numbers,
taxes and snapshots, edits refused once issued, void, write-off, credit notes, and the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.billing.models import Invoice, InvoicedBooking
from tests.support.factories import arrange, new_address, new_booking, new_client, new_service
from tests.support.factories.billing import api_draft
from tests.support.identity import Member, add_member, signup

SNAPSHOT = {
    "line_items": [
        {"kind": "base", "description": "Standard clean", "quantity": 1, "unit_price_cents": 10_000, "amount_cents": 10_000},
        {"kind": "bedrooms", "description": "3 bedrooms", "quantity": 3, "unit_price_cents": 1_000, "amount_cents": 3_000},
        {"kind": "addon", "description": "Oven", "quantity": 1, "unit_price_cents": 2_500, "amount_cents": 2_500},
    ],
    "subtotal_cents": 15_500,
    "discount_cents": 1_550,
    "tax_cents": 0,
    "total_cents": 13_950,
}  # fmt: skip


async def _visits(owner_engine: AsyncEngine, org_id: UUID, *, region: str | None = "QC", count: int = 1,
                  status: str = "completed", client_id: UUID | None = None) -> tuple[UUID, list[UUID]]:  # fmt: skip
    async with arrange(owner_engine) as db:
        if client_id is None:
            client_id = (await new_client(db, org_id, name="Marie Tremblay", email="marie@example.com")).id
        address = await new_address(db, org_id, client_id, city="Montréal", region=region)
        service = await new_service(db, org_id)
        ids = []
        for n in range(count):
            booking = await new_booking(
                db, org_id, client_id, address.id, service.id, status=status, price=SNAPSHOT, total_cents=13_950,
                starts_at=datetime.now(UTC) - timedelta(days=2 + n),
            )  # fmt: skip
            ids.append(booking.id)
    return client_id, ids


async def _settings(client: Any, owner: Member, **body: Any) -> None:
    response = await client.put("/v1/billing/settings", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


async def test_a_hand_made_draft_is_issued_with_number_taxes_and_snapshots(client, owner_engine) -> None:
    owner = await signup(client)
    await _settings(client, owner, tax_region="ON", gst_hst_number="123456789 RT0001", payment_terms_days=30)
    draft = await api_draft(
        client, owner, lines=[{"description": "Deep clean", "unit_cents": 12_345}, {"description": "Windows",
        "unit_cents": 2_000, "quantity": "1.5"}], notes="Thanks!",
    )  # fmt: skip
    assert draft["status"] == "draft" and draft["number"] is None and draft["display_number"] is None
    assert [line["amount_cents"] for line in draft["lines"]] == [12_345, 3_000]
    assert draft["total_cents"] == 15_345

    issued = (await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)).json()
    today = datetime.now(ZoneInfo("America/Toronto")).date()
    assert issued["status"] == "issued"
    assert issued["display_number"] == f"INV-{today.year}-000001" and issued["number"] == 1
    assert issued["due_on"] == (today + timedelta(days=30)).isoformat()
    # ON: HST 13 % on each line, half-up: 1604.85 -> 1605, 390 -> 390.
    tax = [line for line in issued["lines"] if line["kind"] == "tax"]
    assert [(t["tax_name"], t["tax_rate"], t["amount_cents"]) for t in tax] == [("HST", "13", 1_995)]
    assert (issued["subtotal_cents"], issued["tax_cents"], issued["total_cents"]) == (15_345, 1_995, 17_340)
    assert issued["tax_region"] == "ON"
    assert issued["registration"] == {"gst_hst_number": "123456789 RT0001"}
    assert issued["open_cents"] == 17_340 and issued["notes"] == "Thanks!"

    second = await api_draft(client, owner)
    again = (await client.post(f"/v1/invoices/{second['id']}/issue", headers=owner.headers)).json()
    assert again["number"] == 2
    async with arrange(owner_engine) as db:
        actions = (
            await db.execute(
                text("SELECT action FROM admin_audit_logs WHERE org_id = :o AND resource_type = 'invoice' ORDER BY created_at"),
                {"o": owner.org_id},
            )
        ).scalars().all()  # fmt: skip
    assert actions.count("invoice.create") == 2 and actions.count("invoice.issue") == 2


async def test_visits_become_lines_and_the_service_address_picks_the_taxes(client, owner_engine) -> None:
    owner = await signup(client)
    await _settings(client, owner, tax_region="ON", qst_number="1234567890 TQ0001")
    client_id, bookings = await _visits(owner_engine, owner.org_id, region="Québec")
    draft = await api_draft(client, owner, client_id=str(client_id), booking_ids=[str(bookings[0])], lines=[])
    assert [(line["kind"], line["amount_cents"]) for line in draft["lines"]] == [
        ("service", 10_000), ("service", 3_000), ("addon", 2_500), ("discount", -1_550),
    ]  # fmt: skip
    assert draft["lines"][1]["quantity"] == "3" and draft["lines"][1]["unit_cents"] == 1_000
    assert draft["booking_ids"] == [str(bookings[0])]
    assert draft["client_name"] == "Marie Tremblay" and draft["billing_address"]["city"] == "Montréal"

    issued = (await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)).json()
    assert issued["tax_region"] == "QC"  # the service address, not the organisation's ON
    # Per line: GST 500 + 150 + 125 - 77.5(-78) = 697; QST 997.5(998) + 299.25(299) + 249.375(249) - 154.61(-155) = 1391
    taxes = {t["tax_name"]: t["amount_cents"] for t in issued["lines"] if t["kind"] == "tax"}
    assert taxes == {"GST": 697, "QST": 1_391}
    assert issued["total_cents"] == 13_950 + 697 + 1_391
    assert issued["registration"] == {"qst_number": "1234567890 TQ0001"}


async def test_a_visit_is_on_one_live_invoice_and_must_be_completed_and_the_clients(client, owner_engine) -> None:
    owner = await signup(client)
    client_id, (visit,) = await _visits(owner_engine, owner.org_id)
    await api_draft(client, owner, client_id=str(client_id), booking_ids=[str(visit)], lines=[])
    body = {"client_id": str(client_id), "booking_ids": [str(visit)]}
    twice = await client.post("/v1/invoices", json=body, headers=owner.headers)
    assert twice.status_code == 409 and twice.json()["type"] == "/problems/booking-already-invoiced"

    _, (pending,) = await _visits(owner_engine, owner.org_id, status="confirmed", client_id=client_id)
    refused = await client.post("/v1/invoices", json={**body, "booking_ids": [str(pending)]}, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/booking-not-completed"

    _, (theirs,) = await _visits(owner_engine, owner.org_id)
    refused = await client.post("/v1/invoices", json={**body, "booking_ids": [str(theirs)]}, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/booking-other-client"
    async with arrange(owner_engine) as db:
        # Nothing half-written: only the first draft exists.
        assert await db.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == owner.org_id)) == 1


async def test_validation_errors_are_problems_and_write_nothing(client, owner_engine) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    cases = [
        {"client_id": draft["client_id"], "lines": [{"description": "x", "unit_cents": 100, "quantity": "0"}]},
        {"client_id": draft["client_id"], "lines": [{"description": "x", "unit_cents": 100, "quantity": "1.234"}]},
        {"client_id": draft["client_id"], "lines": [{"description": "x", "unit_cents": -100}]},
        {"client_id": draft["client_id"], "lines": [{"description": "x", "unit_cents": 100, "kind": "discount"}]},
        {"client_id": draft["client_id"], "lines": [{"description": "", "unit_cents": 100}]},
        {"client_id": draft["client_id"], "bogus": 1},
        {"lines": []},
    ]
    for body in cases:
        response = await client.post("/v1/invoices", json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/validation-error"
    missing = await client.post("/v1/invoices", json={"client_id": str(UUID(int=1))}, headers=owner.headers)
    assert missing.status_code == 404
    bad_status = await client.get("/v1/invoices?status=nope", headers=owner.headers)
    assert bad_status.status_code == 400
    async with arrange(owner_engine) as db:
        assert await db.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == owner.org_id)) == 1


async def test_only_a_draft_changes_and_an_issued_invoice_is_never_deleted(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    edited = await client.patch(url, json={"lines": [{"description": "Move-out clean", "unit_cents": 30_000}],
                                           "notes": "Key under the mat"}, headers=owner.headers)  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert [line["description"] for line in edited.json()["lines"]] == ["Move-out clean"]
    assert edited.json()["total_cents"] == 30_000 and edited.json()["notes"] == "Key under the mat"

    assert (await client.post(f"{url}/issue", headers=owner.headers)).status_code == 200
    for response in (
        await client.patch(url, json={"notes": "late"}, headers=owner.headers),
        await client.delete(url, headers=owner.headers),
        await client.post(f"{url}/issue", headers=owner.headers),
    ):
        assert response.status_code == 409 and response.json()["type"] == "/problems/invoice-not-draft"
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "issued"

    other = await api_draft(client, owner)
    assert (await client.delete(f"/v1/invoices/{other['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/v1/invoices/{other['id']}", headers=owner.headers)).status_code == 404


async def test_an_empty_or_zero_invoice_is_not_issued(client) -> None:
    owner = await signup(client)
    empty = await api_draft(client, owner, lines=[])
    response = await client.post(f"/v1/invoices/{empty['id']}/issue", headers=owner.headers)
    assert response.status_code == 409 and response.json()["type"] == "/problems/invoice-empty"
    zero = await api_draft(client, owner, lines=[{"description": "Free", "unit_cents": 0}])
    response = await client.post(f"/v1/invoices/{zero['id']}/issue", headers=owner.headers)
    assert response.status_code == 409 and response.json()["type"] == "/problems/invoice-zero"
    assert (await client.get(f"/v1/invoices/{zero['id']}", headers=owner.headers)).json()["number"] is None


async def test_void_frees_the_visits_and_is_refused_once_money_came_in(client, owner_engine) -> None:
    owner = await signup(client)
    client_id, (visit,) = await _visits(owner_engine, owner.org_id)
    draft = await api_draft(client, owner, client_id=str(client_id), booking_ids=[str(visit)], lines=[])
    await client.post(f"/v1/invoices/{draft['id']}/issue", headers=owner.headers)
    voided = await client.post(
        f"/v1/invoices/{draft['id']}/void", json={"reason": "wrong client"}, headers=owner.headers
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void" and voided.json()["void_reason"] == "wrong client"
    assert voided.json()["number"] == 1  # the number stays used: no gap, no reuse
    async with arrange(owner_engine) as db:
        assert (
            await db.scalar(
                select(func.count()).select_from(InvoicedBooking).where(InvoicedBooking.booking_id == visit)
            )
            == 0
        )
    again = await api_draft(client, owner, client_id=str(client_id), booking_ids=[str(visit)], lines=[])
    await client.post(f"/v1/invoices/{again['id']}/issue", headers=owner.headers)
    paid = await client.post(f"/v1/invoices/{again['id']}/payments", json={"amount_cents": 100, "method": "cash"},
                             headers=owner.headers)  # fmt: skip
    assert paid.status_code == 201, paid.text
    refused = await client.post(f"/v1/invoices/{again['id']}/void", json={"reason": "x"}, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/invoice-not-voidable"

    draft_only = await api_draft(client, owner)
    voided = await client.post(f"/v1/invoices/{draft_only['id']}/void", json={"reason": "dup"}, headers=owner.headers)
    assert voided.status_code == 200 and voided.json()["status"] == "void" and voided.json()["number"] is None
    assert (
        await client.post(f"/v1/invoices/{draft_only['id']}/void", json={"reason": "x"}, headers=owner.headers)
    ).status_code == 409


async def test_write_off_an_open_invoice(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    refused = await client.post(f"{url}/uncollectible", json={}, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/invoice-not-open"
    await client.post(f"{url}/issue", headers=owner.headers)
    done = await client.post(f"{url}/uncollectible", json={"reason": "moved away"}, headers=owner.headers)
    assert done.status_code == 200 and done.json()["status"] == "uncollectible" and done.json()["open_cents"] == 0


async def test_credit_notes_have_their_own_numbers_and_never_exceed_the_invoice(client) -> None:
    owner = await signup(client)
    await _settings(client, owner, tax_region="ON")
    draft = await api_draft(client, owner, lines=[{"description": "Clean", "unit_cents": 10_000}])
    url = f"/v1/invoices/{draft['id']}"
    await client.post(f"{url}/issue", headers=owner.headers)  # 100.00 + 13.00 HST
    first = await client.post(f"{url}/credit-notes", json={"lines": [{"description": "Missed room", "unit_cents": 4_000}],
                                                         "reason": "bathroom skipped"}, headers=owner.headers)  # fmt: skip
    assert first.status_code == 201, first.text
    note = first.json()
    assert note["kind"] == "credit_note" and note["credit_for_id"] == draft["id"]
    assert note["display_number"] == "INV-CN-000001" and note["total_cents"] == 4_520  # 40.00 + 5.20 HST
    invoice = (await client.get(url, headers=owner.headers)).json()
    assert (invoice["status"], invoice["paid_cents"], invoice["open_cents"]) == ("partially_paid", 4_520, 6_780)

    too_much = await client.post(f"{url}/credit-notes", json={"lines": [{"description": "All", "unit_cents": 6_001}],
                                                            "reason": "x"}, headers=owner.headers)  # fmt: skip
    assert too_much.status_code == 409 and too_much.json()["type"] == "/problems/credit-exceeds-invoice"
    assert too_much.json()["remaining_cents"] == 6_780
    rest = await client.post(f"{url}/credit-notes", json={"lines": [{"description": "Rest", "unit_cents": 6_000}],
                                                        "reason": "goodwill"}, headers=owner.headers)  # fmt: skip
    assert rest.status_code == 201 and rest.json()["number"] == 2 and rest.json()["total_cents"] == 6_780
    invoice = (await client.get(url, headers=owner.headers)).json()
    assert (invoice["status"], invoice["open_cents"]) == ("paid", 0)
    notes = (await client.get("/v1/invoices?kind=credit_note", headers=owner.headers)).json()["items"]
    assert sorted(n["number"] for n in notes) == [1, 2]

    unissued = await api_draft(client, owner)
    refused = await client.post(f"/v1/invoices/{unissued['id']}/credit-notes",
                                json={"lines": [{"description": "x", "unit_cents": 1}], "reason": "x"}, headers=owner.headers)  # fmt: skip
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/invoice-not-issued"


async def test_the_list_pages_newest_first_and_filters(client, owner_engine) -> None:
    owner = await signup(client)
    drafts = [await api_draft(client, owner) for _ in range(5)]
    await client.post(f"/v1/invoices/{drafts[0]['id']}/issue", headers=owner.headers)
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/invoices?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query, headers=owner.headers)).json()
        seen += [item["id"] for item in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [d["id"] for d in reversed(drafts)]
    issued = (await client.get("/v1/invoices?status=issued", headers=owner.headers)).json()["items"]
    assert [i["id"] for i in issued] == [drafts[0]["id"]]
    mine = (await client.get(f"/v1/invoices?client_id={drafts[1]['client_id']}", headers=owner.headers)).json()["items"]
    assert [i["id"] for i in mine] == [drafts[1]["id"]]
    async with arrange(owner_engine) as db:
        await db.execute(text("UPDATE invoices SET overdue = true WHERE id = :i"), {"i": drafts[0]["id"]})
    overdue = (await client.get("/v1/invoices?overdue=true", headers=owner.headers)).json()["items"]
    assert [i["id"] for i in overdue] == [drafts[0]["id"]]


async def test_viewers_read_but_change_nothing_and_cleaners_see_no_invoices(client) -> None:
    owner = await signup(client)
    draft = await api_draft(client, owner)
    viewer = await add_member(client, owner, "viewer")
    worker = await add_member(client, owner, "worker")
    finance = await add_member(client, owner, "finance")
    url = f"/v1/invoices/{draft['id']}"
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.get("/v1/billing/settings", headers=finance.headers)).status_code == 200
    refused = [
        await client.post(f"{url}/issue", headers=viewer.headers),
        await client.patch(url, json={"notes": "x"}, headers=viewer.headers),
        await client.post(f"{url}/payments", json={"amount_cents": 1, "method": "cash"}, headers=viewer.headers),
        await client.get("/v1/billing/settings", headers=viewer.headers),
        await client.get(url, headers=worker.headers),
        await client.get("/v1/invoices", headers=worker.headers),
        await client.post("/v1/invoices", json={"client_id": draft["client_id"]}, headers=worker.headers),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "draft"


async def test_another_organisation_gets_404_for_every_invoice_route(client) -> None:
    owner = await signup(client)
    stranger = await signup(client, name="Other Co")
    draft = await api_draft(client, owner)
    url = f"/v1/invoices/{draft['id']}"
    calls = [
        ("GET", url, None),
        ("PATCH", url, {"notes": "x"}),
        ("DELETE", url, None),
        ("POST", f"{url}/issue", None),
        ("POST", f"{url}/void", {"reason": "x"}),
        ("POST", f"{url}/uncollectible", {}),
        ("POST", f"{url}/credit-notes", {"lines": [{"description": "x", "unit_cents": 1}], "reason": "x"}),
        ("POST", f"{url}/payments", {"amount_cents": 1, "method": "cash"}),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=stranger.headers)
        assert response.status_code == 404, (method, path, response.text)
    listed = (await client.get("/v1/invoices", headers=stranger.headers)).json()
    assert listed["items"] == []
    refused = await client.post("/v1/invoices", json={"client_id": draft["client_id"]}, headers=stranger.headers)
    assert refused.status_code == 404
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "draft"
