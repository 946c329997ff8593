"""/v1/services, add-ons, frequency discounts and POST /v1/quotes through the API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.client import Client
from tests.support.identity import add_member, signup

STANDARD = {
    "name": "Standard clean",
    "base_price_cents": 8000,
    "base_minutes": 60,
    "price_per_bedroom_cents": 2000,
    "minutes_per_bedroom": 30,
    "price_per_bathroom_cents": 2500,
    "minutes_per_bathroom": 25,
}


async def _post(client: Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_quote_breakdown(client: Client) -> None:
    owner = await signup(client, currency="CAD")
    response = await client.patch("/v1/org", json={"tax_rate_bps": 1300}, headers=owner.headers)
    assert response.status_code == 200, response.text
    service = await _post(client, "/v1/services", STANDARD, owner.headers)
    assert service["currency"] == "CAD"
    oven = await _post(
        client,
        f"/v1/services/{service['id']}/addons",
        {"name": "Oven", "price_cents": 3000, "minutes": 30},
        owner.headers,
    )
    fridge = await _post(client, "/v1/addons", {"name": "Fridge", "price_cents": 2500, "minutes": 20}, owner.headers)
    response = await client.put(
        "/v1/frequency-discounts", json={"weekly": 1500, "biweekly": 1000}, headers=owner.headers
    )
    assert response.json() == {"weekly": 1500, "biweekly": 1000, "monthly": 0}

    body = {
        "service_id": service["id"],
        "bedrooms": 3,
        "bathrooms": 2,
        "addon_ids": [oven["id"], fridge["id"]],
        "frequency": "biweekly",
    }
    response = await client.post("/v1/quotes", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    quote = response.json()
    assert [(li["kind"], li["quantity"], li["amount_cents"], li["minutes"]) for li in quote["line_items"]] == [
        ("base", 1, 8000, 60),
        ("bedrooms", 3, 6000, 90),
        ("bathrooms", 2, 5000, 50),
        ("addon", 1, 3000, 30),
        ("addon", 1, 2500, 20),
    ]
    assert quote["line_items"][3]["addon_id"] == oven["id"]
    assert {
        k: quote[k]
        for k in (
            "subtotal_cents",
            "discount_bps",
            "discount_cents",
            "taxable_cents",
            "tax_rate_bps",
            "tax_cents",
            "total_cents",
            "estimated_minutes",
            "currency",
            "frequency",
        )
    } == {
        "subtotal_cents": 24500,
        "discount_bps": 1000,
        "discount_cents": 2450,
        "taxable_cents": 22050,
        "tax_rate_bps": 1300,
        "tax_cents": 2867,
        "total_cents": 24917,
        "estimated_minutes": 250,
        "currency": "CAD",
        "frequency": "biweekly",
    }
    again = await client.post("/v1/quotes", json=body, headers=owner.headers)
    assert again.content == response.content  # deterministic

    viewer = await add_member(client, owner, "viewer")
    assert (await client.post("/v1/quotes", json=body, headers=viewer.headers)).status_code == 200


async def test_quote_refusals(client: Client) -> None:
    owner, stranger = await signup(client), await signup(client)
    service = await _post(client, "/v1/services", STANDARD, owner.headers)
    area = await _post(
        client,
        "/v1/services",
        {"name": "Office", "pricing_mode": "square_feet", "price_per_100_sqft_cents": 900},
        owner.headers,
    )
    theirs = await _post(client, "/v1/addons", {"name": "Theirs", "price_cents": 100}, stranger.headers)

    async def quote(body: dict[str, Any], member: Any = owner) -> Any:
        return await client.post("/v1/quotes", json=body, headers=member.headers)

    cases = [
        ({"service_id": service["id"], "bedrooms": -1}, 400),
        ({"service_id": service["id"], "bedrooms": 101}, 400),
        ({"service_id": service["id"], "frequency": "daily"}, 400),
        ({"service_id": "not-a-uuid"}, 400),
        ({"service_id": service["id"], "addon_ids": [str(uuid.uuid4())]}, 400),
        ({"service_id": service["id"], "addon_ids": [theirs["id"]]}, 400),
        ({"service_id": area["id"]}, 400),  # area-priced: square_feet required
        ({"service_id": str(uuid.uuid4())}, 404),
        ({}, 400),
    ]
    for body, status in cases:
        response = await quote(body)
        assert response.status_code == status, (body, response.text)
    assert (await quote({"service_id": service["id"]}, stranger)).status_code == 404
    ok = await quote({"service_id": area["id"], "square_feet": 1500})
    assert ok.json()["total_cents"] == 13500  # 9.00 per 100 sq ft; a new organisation charges no tax

    assert (await client.delete(f"/v1/services/{service['id']}", headers=owner.headers)).status_code == 204
    response = await quote({"service_id": service["id"]})
    assert (response.status_code, response.json()["type"]) == (409, "/problems/service-inactive")


async def test_services_and_addons_crud(client: Client) -> None:
    owner = await signup(client)
    service = await _post(client, "/v1/services", STANDARD, owner.headers)
    assert (
        await client.post("/v1/services", json={"name": "STANDARD CLEAN"}, headers=owner.headers)
    ).status_code == 409
    for bad in (
        {"name": "X", "base_price_cents": -1},
        {"name": "X", "pricing_mode": "hourly"},
        {"name": "X", "base_minutes": 100000},
        {"name": ""},
        {"name": "X", "base_price_cents": 1.5},
    ):
        assert (await client.post("/v1/services", json=bad, headers=owner.headers)).status_code == 400, bad

    patched = await client.patch(
        f"/v1/services/{service['id']}", json={"base_price_cents": 9000}, headers=owner.headers
    )
    assert patched.json()["base_price_cents"] == 9000
    assert (
        await client.patch(f"/v1/services/{service['id']}", json={"price_per_bedroom_cents": -5}, headers=owner.headers)
    ).status_code == 400

    own = await _post(
        client, f"/v1/services/{service['id']}/addons", {"name": "Oven", "price_cents": 3000}, owner.headers
    )
    shared = await _post(client, "/v1/addons", {"name": "Windows", "price_cents": 1500}, owner.headers)
    listed = (await client.get(f"/v1/services/{service['id']}/addons", headers=owner.headers)).json()
    assert [(a["name"], a["service_id"]) for a in listed] == [("Oven", service["id"]), ("Windows", None)]
    only_own = (
        await client.get(f"/v1/services/{service['id']}/addons?include_global=false", headers=owner.headers)
    ).json()
    assert [a["id"] for a in only_own] == [own["id"]]
    assert [a["id"] for a in (await client.get("/v1/addons", headers=owner.headers)).json()] == [shared["id"]]

    # Each add-on is addressed where it lives.
    assert (
        await client.patch(f"/v1/addons/{own['id']}", json={"price_cents": 1}, headers=owner.headers)
    ).status_code == 404
    response = await client.patch(
        f"/v1/services/{service['id']}/addons/{own['id']}", json={"price_cents": 3200}, headers=owner.headers
    )
    assert response.json()["price_cents"] == 3200
    assert (await client.delete(f"/v1/addons/{shared['id']}", headers=owner.headers)).status_code == 204
    listed = (await client.get(f"/v1/services/{service['id']}/addons", headers=owner.headers)).json()
    assert [a["name"] for a in listed] == ["Oven"]

    assert (await client.delete(f"/v1/services/{service['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get("/v1/services", headers=owner.headers)).json()["total"] == 0
    everything = (await client.get("/v1/services?include_inactive=true", headers=owner.headers)).json()
    assert [s["active"] for s in everything["items"]] == [False]
    assert (
        await client.put("/v1/frequency-discounts", json={"weekly": 10001}, headers=owner.headers)
    ).status_code == 400


async def test_permissions_and_other_organisations(client: Client) -> None:
    owner, stranger = await signup(client), await signup(client)
    service = await _post(client, "/v1/services", STANDARD, owner.headers)
    finance = await add_member(client, owner, "finance")
    dispatcher = await add_member(client, owner, "dispatcher")
    field = await add_member(client, owner, "worker")

    # Finance sets prices; dispatchers and cleaners read the catalogue but cannot change it.
    assert (
        await client.patch(f"/v1/services/{service['id']}", json={"base_minutes": 90}, headers=finance.headers)
    ).status_code == 200
    for member in (dispatcher, field):
        assert (await client.get("/v1/services", headers=member.headers)).status_code == 200
        for method, path, body in [
            ("POST", "/v1/services", {"name": "X"}),
            ("PATCH", f"/v1/services/{service['id']}", {"name": "X"}),
            ("POST", "/v1/addons", {"name": "X"}),
            ("PUT", "/v1/frequency-discounts", {"weekly": 1}),
        ]:
            assert (await client.request(method, path, json=body, headers=member.headers)).status_code == 403
    assert (
        await client.post("/v1/quotes", json={"service_id": service["id"]}, headers=field.headers)
    ).status_code == 200

    for method, path in [
        ("GET", f"/v1/services/{service['id']}"),
        ("DELETE", f"/v1/services/{service['id']}"),
        ("GET", f"/v1/services/{service['id']}/addons"),
    ]:
        assert (await client.request(method, path, headers=stranger.headers)).status_code == 404
    assert (await client.get("/v1/services", headers=stranger.headers)).json()["total"] == 0
