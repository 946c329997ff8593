"""A client's data through the exports machinery (`client_data`): a ZIP of JSON holding what we
keep about that client and nobody else, for owners and admins only, never another organisation's
client; and an erasure expires the earlier bundles so the sweep deletes their files."""

from __future__ import annotations

import io
import json
import zipfile
from uuid import UUID

from sqlalchemy import text

from spotless.domain.exports.runner import run_export
from tests.integration.retention.deliveries import add_delivery
from tests.integration.retention.test_erasure import _client_world
from tests.support.identity import add_member, signup


async def test_a_clients_export_holds_their_data_and_not_others(api, runtime, owner_engine):
    owner = await signup(api)
    world = await _client_world(owner_engine, owner.org_id)
    async with owner_engine.begin() as conn:
        grace = await conn.scalar(
            text(
                "INSERT INTO client (id, org_id, name, email, tags, blocked, created_at, updated_at) VALUES"
                " (gen_random_uuid(), :org, 'Grace Hopper', 'grace@example.com', '{}', false, now(), now())"
                " RETURNING id"
            ),
            {"org": owner.org_id},
        )
        await add_delivery(conn, owner.org_id, grace, age_days=1, address="grace@example.com", kind="invoice.issued")
    created = await api.post(
        "/v1/exports", json={"kind": "client_data", "client_id": str(world["client"])}, headers=owner.headers
    )
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["kind"] == "client_data" and body["client_id"] == str(world["client"])
    assert body["filename"] == f"client_data_{world['client']}.zip"
    assert await run_export(runtime, owner.org_id, UUID(body["id"])) == "succeeded"

    polled = (await api.get(f"/v1/exports/{body['id']}", headers=owner.headers)).json()
    assert polled["status"] == "succeeded" and polled["download_url"]
    downloaded = await api.get(polled["download_url"])
    assert downloaded.status_code == 200, downloaded.text
    archive = zipfile.ZipFile(io.BytesIO(downloaded.content))
    parts = {name: json.loads(archive.read(name)) for name in archive.namelist()}
    assert set(parts) >= {
        "profile.json", "addresses.json", "bookings.json", "series.json", "invoices.json", "payments.json",
        "payment_methods.json", "messages.json",
    }  # fmt: skip
    assert parts["profile.json"][0]["email"] == "ada.lovelace@example.com"
    assert parts["addresses.json"][0]["line1"] == "12 Analytical Way"
    assert len(parts["bookings.json"]) == 1
    assert parts["invoices.json"][0]["total_cents"] == world["total"] and parts["invoices.json"][0]["lines"]
    assert parts["payments.json"][0]["amount_cents"] == world["total"]
    assert parts["payment_methods.json"][0]["last4"] == "4242"
    assert "stripe_payment_method_id" not in parts["payment_methods.json"][0]
    # What was sent to them (kind, channel, where, when, status), never what it said: a link in
    # a message's wording or parameters may be a live secret.
    [message] = parts["messages.json"]
    assert message["id"] == str(world["message"]) and message["kind"] == "booking.confirmed"
    assert (message["channel"], message["address"], message["status"]) == ("email", "ada.lovelace@example.com", "sent")
    assert message["requested_at"] and message["finished_at"]
    assert set(message) == {"id", "kind", "channel", "address", "status", "requested_at", "finished_at"}
    assert b"SECRET-LINK" not in b"".join(archive.read(n) for n in archive.namelist())
    assert polled["progress"]["done"] == sum(len(rows) for rows in parts.values())
    assert b"grace@example.com" not in b"".join(archive.read(n) for n in archive.namelist())

    # Erasing the client expires the bundle: no link any more, and the sweep deletes its file.
    erased = await api.post(f"/v1/clients/{world['client']}/erasure", headers=owner.headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["counts"]["data_exports"] == 1
    after = (await api.get(f"/v1/exports/{body['id']}", headers=owner.headers)).json()
    assert after["status"] == "expired" and after["download_url"] is None


async def test_client_data_exports_need_privacy_rights_and_the_callers_own_client(api, owner_engine):
    owner = await signup(api, name="Org A")
    stranger = await signup(api, name="Org B")
    world = await _client_world(owner_engine, owner.org_id)
    request = {"kind": "client_data", "client_id": str(world["client"])}
    finance = await add_member(api, owner, "finance")  # holds exports.run, not privacy.manage
    assert (await api.post("/v1/exports", json=request, headers=finance.headers)).status_code == 403
    assert (await api.post("/v1/exports", json=request, headers=stranger.headers)).status_code == 404
    missing = await api.post("/v1/exports", json={"kind": "client_data"}, headers=owner.headers)
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "client_id"
    stray = await api.post(
        "/v1/exports", json={"kind": "clients", "client_id": str(world["client"])}, headers=owner.headers
    )
    assert stray.status_code == 400
    first = await api.post("/v1/exports", json=request, headers=owner.headers)
    again = await api.post("/v1/exports", json=request, headers=owner.headers)
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    # An export still running blocks the erasure (it would write the data out again).
    blocked = await api.post(f"/v1/clients/{world['client']}/erasure", headers=owner.headers)
    assert blocked.status_code == 409
    assert {b["kind"] for b in blocked.json()["blockers"]} == {"export_in_progress"}
