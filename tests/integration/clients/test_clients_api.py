"""/v1/clients as the web app uses it: create, search, update, block, archive, addresses."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.client import Client
from tests.support.identity import add_member, signup

HOME = {"line1": "12 Elm St", "city": "Vancouver", "country": "CA", "bedrooms": 3, "bathrooms": 2}


async def _create(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/clients", json={"name": "Ada Lovelace", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_update_and_archive_a_client(client: Client) -> None:
    owner = await signup(client)
    created = await _create(
        client,
        owner.headers,
        email="Ada@Example.com",
        phone="+1 604 555 0101",
        tags=["VIP"],
        notes="Gate code 1234",
        addresses=[HOME],
    )
    assert created["tags"] == ["vip"]
    assert created["blocked"] is False and created["archived_at"] is None
    assert created["addresses"][0]["bedrooms"] == 3

    fetched = (await client.get(f"/v1/clients/{created['id']}", headers=owner.headers)).json()
    assert fetched["email"] == "Ada@Example.com"
    assert [a["line1"] for a in fetched["addresses"]] == ["12 Elm St"]

    patched = await client.patch(
        f"/v1/clients/{created['id']}",
        json={"notes": None, "blocked": True, "blocked_reason": "unpaid"},
        headers=owner.headers,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["notes"], patched.json()["blocked"], patched.json()["blocked_reason"]) == (
        None,
        True,
        "unpaid",
    )

    assert (await client.delete(f"/v1/clients/{created['id']}", headers=owner.headers)).status_code == 204
    assert (await client.delete(f"/v1/clients/{created['id']}", headers=owner.headers)).status_code == 204
    listed = (await client.get("/v1/clients", headers=owner.headers)).json()
    assert (listed["items"], listed["has_more"], listed["next_cursor"]) == ([], False, None)
    listed = (await client.get("/v1/clients?include_archived=true", headers=owner.headers)).json()
    assert [c["id"] for c in listed["items"]] == [created["id"]]
    assert listed["items"][0]["archived_at"] is not None

    restored = await client.patch(f"/v1/clients/{created['id']}", json={"archived": False}, headers=owner.headers)
    assert restored.json()["archived_at"] is None


async def test_search_filters_and_pagination(client: Client) -> None:
    owner = await signup(client)
    await _create(client, owner.headers, name="Alice Martin", phone="(604) 555-0101", tags=["weekly"])
    await _create(client, owner.headers, name="Bruno Diaz", email="bruno@corp.example", blocked=True)
    for i in range(4):
        await _create(client, owner.headers, name=f"Zed {i}")

    async def get(query: str) -> dict[str, Any]:
        response = await client.get(f"/v1/clients?{query}", headers=owner.headers)
        assert response.status_code == 200, response.text
        return response.json()

    assert [c["name"] for c in (await get("q=6045550101"))["items"]] == ["Alice Martin"]
    assert [c["name"] for c in (await get("q=CORP"))["items"]] == ["Bruno Diaz"]
    assert [c["name"] for c in (await get("tag=weekly"))["items"]] == ["Alice Martin"]
    assert [c["name"] for c in (await get("blocked=true"))["items"]] == ["Bruno Diaz"]
    first = await get("limit=2")
    assert (first["limit"], first["has_more"]) == (2, True)
    assert [c["name"] for c in first["items"]] == ["Alice Martin", "Bruno Diaz"]
    second = await get(f"limit=2&cursor={first['next_cursor']}")
    assert [c["name"] for c in second["items"]] == ["Zed 0", "Zed 1"]
    last = await get(f"limit=2&cursor={second['next_cursor']}")
    assert ([c["name"] for c in last["items"]], last["has_more"], last["next_cursor"]) == (
        ["Zed 2", "Zed 3"],
        False,
        None,
    )
    assert (await get(""))["limit"] == 50
    assert "total" not in await get("")  # no COUNT(*) per page

    tampered = first["next_cursor"][:-2] + ("AA" if not first["next_cursor"].endswith("AA") else "BB")
    for bad in ("limit=0", "limit=201", "cursor=garbage", f"cursor={tampered}", "blocked=maybe", "q=%00"):
        response = await client.get(f"/v1/clients?{bad}", headers=owner.headers)
        assert response.status_code == 400, bad
    response = await client.get("/v1/clients?cursor=garbage", headers=owner.headers)
    assert response.json()["type"] == "/problems/invalid-cursor"


async def test_invalid_input_is_a_400_naming_the_field(client: Client) -> None:
    owner = await signup(client)
    cases: list[dict[str, Any]] = [
        {"name": ""},
        {"name": "A", "email": "not-an-email"},
        {"name": "A", "tags": [""]},
        {"name": "A", "unknown": 1},
        {"name": "A", "addresses": [{**HOME, "country": "Canada"}]},
        {"name": "A", "addresses": [{**HOME, "bedrooms": -1}]},
        {"name": 5},
        {"name": "NUL \u0000 byte"},  # Postgres text cannot store it: a 400, not a driver error
    ]
    for body in cases:
        response = await client.post("/v1/clients", json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"], body
    response = await client.post(
        "/v1/clients", content=b"{not json", headers={**owner.headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    created = await _create(client, owner.headers)
    response = await client.patch(f"/v1/clients/{created['id']}", json={"name": None}, headers=owner.headers)
    assert response.status_code == 400


async def test_addresses_crud(client: Client) -> None:
    owner = await signup(client)
    created = await _create(client, owner.headers)
    base = f"/v1/clients/{created['id']}/addresses"
    response = await client.post(base, json={**HOME, "label": "Home"}, headers=owner.headers)
    assert response.status_code == 201, response.text
    home = response.json()
    office = (
        await client.post(base, json={**HOME, "line1": "1 Office Rd", "country": "ca"}, headers=owner.headers)
    ).json()
    assert office["country"] == "CA"

    patched = await client.patch(
        f"{base}/{home['id']}", json={"square_feet": 1400, "line2": "Unit 4"}, headers=owner.headers
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["square_feet"], patched.json()["line2"]) == (1400, "Unit 4")
    assert (await client.patch(f"{base}/{home['id']}", json={"city": None}, headers=owner.headers)).status_code == 400

    assert (await client.delete(f"{base}/{office['id']}", headers=owner.headers)).status_code == 204
    assert [a["id"] for a in (await client.get(base, headers=owner.headers)).json()] == [home["id"]]
    everything = (await client.get(f"{base}?include_archived=true", headers=owner.headers)).json()
    assert len(everything) == 2

    # An address is only reachable under its own client.
    other = await _create(client, owner.headers, name="Other")
    assert (
        await client.get(f"/v1/clients/{other['id']}/addresses/{home['id']}", headers=owner.headers)
    ).status_code == 404
    assert (await client.get(f"/v1/clients/{uuid.uuid4()}/addresses", headers=owner.headers)).status_code == 404


async def test_another_organisation_sees_404(client: Client) -> None:
    first, second = await signup(client), await signup(client)
    created = await _create(client, first.headers, addresses=[HOME])
    address_id = created["addresses"][0]["id"]
    for method, path, body in [
        ("GET", f"/v1/clients/{created['id']}", None),
        ("PATCH", f"/v1/clients/{created['id']}", {"name": "Hijack"}),
        ("DELETE", f"/v1/clients/{created['id']}", None),
        ("GET", f"/v1/clients/{created['id']}/addresses", None),
        ("POST", f"/v1/clients/{created['id']}/addresses", HOME),
        ("PATCH", f"/v1/clients/{created['id']}/addresses/{address_id}", {"label": "x"}),
        ("DELETE", f"/v1/clients/{created['id']}/addresses/{address_id}", None),
    ]:
        response = await client.request(method, path, json=body, headers=second.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/v1/clients", headers=second.headers)).json()["items"] == []
    assert (await client.get(f"/v1/clients/{created['id']}", headers=first.headers)).json()["name"] == "Ada Lovelace"


async def test_permissions(client: Client) -> None:
    owner = await signup(client)
    viewer = await add_member(client, owner, "viewer")
    worker = await add_member(client, owner, "worker")
    dispatcher = await add_member(client, owner, "dispatcher")
    created = await _create(client, owner.headers)

    assert (await client.get("/v1/clients", headers=viewer.headers)).status_code == 200
    assert (await client.get(f"/v1/clients/{created['id']}", headers=viewer.headers)).status_code == 200
    for method, path, body in [
        ("POST", "/v1/clients", {"name": "X"}),
        ("PATCH", f"/v1/clients/{created['id']}", {"name": "X"}),
        ("DELETE", f"/v1/clients/{created['id']}", None),
        ("POST", f"/v1/clients/{created['id']}/addresses", HOME),
    ]:
        response = await client.request(method, path, json=body, headers=viewer.headers)
        assert response.status_code == 403, (method, path)

    # A cleaner in the field does not browse the client list.
    assert (await client.get("/v1/clients", headers=worker.headers)).status_code == 403
    assert (await client.get(f"/v1/clients/{created['id']}", headers=worker.headers)).status_code == 403

    assert (
        await client.post("/v1/clients", json={"name": "By dispatcher"}, headers=dispatcher.headers)
    ).status_code == 201
    assert (await client.get("/v1/clients")).status_code == 401
