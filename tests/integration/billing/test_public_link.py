"""An invoice's public link: made by the office, opened by the client without an account.

Unguessable (32 random bytes, only the hash stored), expiring, revocable, and showing that one
invoice only; an unknown, expired or revoked token answers the same 404, and the token appears
in no log line and no audit row."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text, update

from spotless.app import create_app
from spotless.domain.billing.models import InvoiceLink
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories import arrange, new_client, new_issued_invoice
from tests.support.identity import add_member, signup
from tests.support.pdf_text import pdf_text


async def _world(client: Any, owner_engine: Any, name: str = "Sparkle Cleaning", **invoice: Any) -> tuple[Any, Any]:
    owner = await signup(client, name=name)
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Ada Client")
        row = await new_issued_invoice(db, owner.org_id, person.id, **invoice)
    return owner, row


async def _link(client: Any, member: Any, invoice_id: Any, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/invoices/{invoice_id}/links", json=body, headers=member.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _without_request_id(response: Any) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "request_id"}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_a_link_shows_that_invoice_to_anyone_holding_it(client, owner_engine):
    owner, invoice = await _world(client, owner_engine, items=(("Deep clean", 200_00), ("Oven", 40_00)))
    link = await _link(client, owner, invoice.id)
    token = link["token"]
    assert len(token) == 43 and link["url"] == f"http://testserver.local/v1/pay/{token}"
    assert link["state"] == "active" and link["invoice_id"] == str(invoice.id)
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)

    response = await client.get(f"/v1/pay/{token}")  # no credentials at all
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    body = response.json()
    assert body["number"] == "INV-2026-000001" and body["org_name"] == "Sparkle Cleaning"
    assert body["status"] == "issued" and body["kind"] == "invoice"
    assert [(line["description"], line["amount_cents"]) for line in body["lines"]] == [
        ("Deep clean", 200_00),
        ("Oven", 40_00),
    ]
    assert body["taxes"] == [{"name": "HST", "rate": "13.000", "amount_cents": 31_20}]
    assert (body["subtotal_cents"], body["tax_cents"], body["total_cents"]) == (240_00, 31_20, 271_20)
    assert body["open_cents"] == 271_20 and body["payable"] is True
    # Nothing that names a row: no invoice, client or organisation ids, no client details.
    assert not {"id", "invoice_id", "client_id", "org_id", "client_name", "client_email"} & _keys(body)
    assert str(invoice.client_id) not in response.text and str(invoice.id) not in response.text

    pdf = await client.get(f"/v1/pay/{token}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    assert "Number: INV-2026-000001" in pdf_text(pdf.content).splitlines()


async def test_only_the_hash_is_stored_and_the_url_is_answered_once(client, owner_engine):
    owner, invoice = await _world(client, owner_engine)
    headers = {**owner.headers, "Idempotency-Key": "link-once-1"}
    first = await client.post(f"/v1/invoices/{invoice.id}/links", json={"expires_in_days": 7}, headers=headers)
    assert first.status_code == 201
    token = first.json()["token"]
    replay = await client.post(f"/v1/invoices/{invoice.id}/links", json={"expires_in_days": 7}, headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    assert replay.json()["url"] is None and replay.json()["token"] is None
    assert replay.headers["idempotent-withheld"] == "url, token"
    assert token not in replay.text

    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM invoice_links"))).scalars().all()
        dumps = [
            json.dumps([str(v) for v in row], default=str)
            for table in ("invoice_links", "admin_audit_logs", "idempotency_keys")
            for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all()
        ]
    assert stored == [hashlib.sha256(token.encode()).digest()]
    assert not any(token in dump for dump in dumps)

    listed = await client.get(f"/v1/invoices/{invoice.id}/links", headers=owner.headers)
    assert listed.status_code == 200
    assert [item["state"] for item in listed.json()] == ["active"]
    assert not {"url", "token", "token_hash"} & _keys(listed.json())


async def test_revoked_expired_and_unknown_tokens_answer_the_same_404(client, owner_engine):
    owner, invoice = await _world(client, owner_engine)
    revoked = await _link(client, owner, invoice.id)
    expired = await _link(client, owner, invoice.id)
    live = await _link(client, owner, invoice.id)

    response = await client.post(f"/v1/invoices/{invoice.id}/links/{revoked['id']}/revoke", headers=owner.headers)
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    again = await client.post(f"/v1/invoices/{invoice.id}/links/{revoked['id']}/revoke", headers=owner.headers)
    assert again.status_code == 200 and again.json()["revoked_at"] == response.json()["revoked_at"]
    async with arrange(owner_engine) as db:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await db.execute(update(InvoiceLink).where(InvoiceLink.id == expired["id"]).values(expires_at=past))

    answers = []
    for token in (revoked["token"], expired["token"], "A" * 43, "short", "x" * 5000, live["token"][:-1] + "_"):
        for suffix in ("", "/pdf"):
            answer = await client.get(f"/v1/pay/{token}{suffix}")
            assert answer.status_code == 404, (token[:10], suffix, answer.text)
            assert token not in answer.text
            answers.append(_without_request_id(answer))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["type"] == "/problems/not-found"
    assert (await client.get(f"/v1/pay/{live['token']}")).status_code == 200

    listed = await client.get(f"/v1/invoices/{invoice.id}/links", headers=owner.headers)
    assert {item["id"]: item["state"] for item in listed.json()} == {
        revoked["id"]: "revoked",
        expired["id"]: "expired",
        live["id"]: "active",
    }


async def test_a_link_shows_nothing_of_another_invoice(client, owner_engine):
    owner, first = await _world(client, owner_engine, items=(("First job", 120_00),))
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Other Client")
        second = await new_issued_invoice(db, owner.org_id, person.id, number=2, items=(("Second job", 90_00),))
    token = (await _link(client, owner, first.id))["token"]
    shown = await client.get(f"/v1/pay/{token}")
    assert shown.json()["number"] == "INV-2026-000001"
    assert "Second job" not in shown.text and "INV-2026-000002" not in shown.text
    pdf = pdf_text((await client.get(f"/v1/pay/{token}/pdf")).content)
    assert "Second job" not in pdf and "Other Client" not in pdf
    # A path that tries to reach past the token is not a route of the link.
    assert (await client.get(f"/v1/pay/{token}/../{second.id}")).status_code == 404


async def test_links_are_only_for_issued_invoices_and_bounded_in_time(client, owner_engine):
    owner, invoice = await _world(client, owner_engine)
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        draft = await new_issued_invoice(
            db, owner.org_id, person.id, number=None, display_number=None, status="draft", series="draft"
        )
        void = await new_issued_invoice(db, owner.org_id, person.id, number=3, status="void")
    for target in (draft, void):
        refused = await client.post(f"/v1/invoices/{target.id}/links", json={}, headers=owner.headers)
        assert refused.status_code == 409 and refused.json()["type"] == "/problems/invoice-not-linkable"
    for days in (0, 91, -1):
        bad = await client.post(
            f"/v1/invoices/{invoice.id}/links", json={"expires_in_days": days}, headers=owner.headers
        )
        assert bad.status_code == 400
    longest = await _link(client, owner, invoice.id, expires_in_days=90)
    assert datetime.fromisoformat(longest["expires_at"]) - datetime.now(UTC) > timedelta(days=89)


async def test_a_void_invoice_behind_a_live_link_shows_nothing_to_pay(client, owner_engine):
    owner, invoice = await _world(client, owner_engine)
    token = (await _link(client, owner, invoice.id))["token"]
    async with arrange(owner_engine) as db:
        from spotless.domain.billing.models import Invoice

        await db.execute(update(Invoice).where(Invoice.id == invoice.id).values(status="void"))
    body = (await client.get(f"/v1/pay/{token}")).json()
    assert body["status"] == "void" and body["open_cents"] == 0 and body["payable"] is False


async def test_other_organisations_and_roles_cannot_manage_the_links(client, owner_engine):
    owner, invoice = await _world(client, owner_engine, name="Org A")
    other = await signup(client, name="Org B")
    viewer = await add_member(client, owner, "viewer")
    finance = await add_member(client, owner, "finance")
    link = await _link(client, finance, invoice.id)  # finance.manage: the finance role may

    base = f"/v1/invoices/{invoice.id}/links"
    assert (await client.post(base, json={}, headers=other.headers)).status_code == 404
    assert (await client.get(base, headers=other.headers)).status_code == 404
    assert (await client.post(f"{base}/{link['id']}/revoke", headers=other.headers)).status_code == 404
    assert (await client.post(base, json={}, headers=viewer.headers)).status_code == 403
    assert (await client.get(base, headers=viewer.headers)).status_code == 403
    assert (await client.post(f"{base}/{link['id']}/revoke", headers=viewer.headers)).status_code == 403

    # A link id under another invoice of the same organisation is not that invoice's link.
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        second = await new_issued_invoice(db, owner.org_id, person.id, number=2)
    wrong = await client.post(f"/v1/invoices/{second.id}/links/{link['id']}/revoke", headers=owner.headers)
    assert wrong.status_code == 404
    assert (await client.get(f"/v1/pay/{link['token']}")).status_code == 200  # still live


async def test_the_token_is_in_no_log_line_and_the_audit_names_the_link(capsys, owner_engine):
    async with app_client(create_app(make_settings(LOG_LEVEL="INFO"))) as client:
        owner, invoice = await _world(client, owner_engine)
        capsys.readouterr()
        link = await _link(client, owner, invoice.id)
        token = link["token"]
        assert (await client.get(f"/v1/pay/{token}")).status_code == 200
        assert (await client.get(f"/v1/pay/{token}/pdf")).status_code == 200
        revoke = await client.post(f"/v1/invoices/{invoice.id}/links/{link['id']}/revoke", headers=owner.headers)
        assert revoke.status_code == 200
        assert (await client.get(f"/v1/pay/{token}")).status_code == 404
        audit = await client.get("/v1/admin/audit", headers=owner.headers)
    # Every line the server wrote (the test's own HTTP client logs the URLs it calls: not ours).
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    server = [entry for entry in lines if entry.get("logger") != "httpx"]
    assert server and not any(token in json.dumps(entry) for entry in server)
    routes = [(e["route"], e["status"]) for e in server if e.get("logger") == "spotless.access"]
    assert ("/v1/pay/{token}", 200) in routes and ("/v1/pay/{token}/pdf", 200) in routes
    assert ("/v1/pay/{token}", 404) in routes

    assert audit.status_code == 200, audit.text
    assert token not in audit.text and hashlib.sha256(token.encode()).hexdigest() not in audit.text
    actions = [entry["action"] for entry in audit.json()["items"]]
    assert "invoice_link.create" in actions and "invoice_link.revoke" in actions


def test_the_public_routes_are_in_the_public_rate_limit_class(app):
    classes = {
        route.path: handler.opt.get("rate_limit")
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if route.path.startswith("/v1/pay/") and "GET" in handler.http_methods
    }
    assert classes == {"/v1/pay/{token:str}": "public", "/v1/pay/{token:str}/pdf": "public"}
