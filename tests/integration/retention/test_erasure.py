"""A client's erasure: no personal field left (the rows are searched), bookings, invoices and the
ledger kept with their amounts, idempotent, audited, refused while the client has open work, to
roles without `privacy.manage` and across organisations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text

from spotless.domain.billing.models import LedgerEntry, PaymentMethod
from spotless.domain.messaging.models import SmsConsent
from tests.integration.retention.deliveries import add_delivery
from tests.support.factories import add, arrange, new_client, new_issued_invoice
from tests.support.factories.catalog import new_service
from tests.support.factories.clients import new_address
from tests.support.factories.scheduling import new_booking
from tests.support.identity import add_member, signup

PERSONAL = ("Ada Lovelace", "ada.lovelace@example.com", "555 0199", "12 Analytical Way", "M5V 1A1", "door code 1234")


async def _client_world(owner_engine: Any, org_id: UUID, *, open_work: bool = False, number: int = 1) -> dict[str, Any]:
    async with arrange(owner_engine) as db:
        client = await new_client(
            db, org_id, name="Ada Lovelace", email="ada.lovelace@example.com", phone="555 0199",
            notes="door code 1234", tags=["vip"],
        )  # fmt: skip
        address = await new_address(
            db, org_id, client.id, line1="12 Analytical Way", city="Toronto", postal_code="M5V 1A1",
            notes="door code 1234",
        )  # fmt: skip
        service = await new_service(db, org_id)
        past = datetime.now(UTC) - timedelta(days=20)
        await new_booking(
            db, org_id, client.id, address.id, service.id, starts_at=past, status="completed", notes="door code 1234"
        )
        invoice = await new_issued_invoice(
            db, org_id, client.id, number=number, status="paid", client_name="Ada Lovelace",
            client_email="ada.lovelace@example.com",
            billing_address={"line1": "12 Analytical Way", "postal_code": "M5V 1A1", "city": "Toronto"},
        )  # fmt: skip
        invoice.paid_cents = invoice.total_cents
        await add(
            db,
            LedgerEntry(
                org_id=org_id, invoice_id=invoice.id, client_id=client.id, kind="payment",
                amount_cents=invoice.total_cents, method="cash", source="manual", occurred_at=past,
            ),
        )  # fmt: skip
        await add(
            db,
            PaymentMethod(
                org_id=org_id, client_id=client.id, stripe_payment_method_id=f"pm_{client.id.hex}", brand="visa",
                last4="4242", active=True,
            ),
        )  # fmt: skip
        # What messaging keeps of them: a message sent (its address and what it said), a consent to texts.
        message = await add_delivery(
            db, org_id, client.id, age_days=3, summary="Ada Lovelace, your visit is confirmed",
            params={"note": "door code 1234", "pay_url": "https://pay.example/t/SECRET-LINK"},
        )  # fmt: skip
        await add(
            db,
            SmsConsent(
                org_id=org_id, recipient_kind="client", recipient_id=client.id, phone="555 0199", source="office"
            ),
        )
        world: dict[str, Any] = {
            "client": client.id, "invoice": invoice.id, "total": invoice.total_cents, "message": message,
        }  # fmt: skip
        if open_work:
            unpaid = await new_issued_invoice(db, org_id, client.id, number=number + 1)
            future = await new_booking(db, org_id, client.id, address.id, service.id)
            world |= {"unpaid": unpaid.id, "future": future.id}
    return world


_ROWS = {
    "client": "SELECT row_to_json(t)::text FROM client t WHERE id = :id",
    "client_address": "SELECT row_to_json(t)::text FROM client_address t WHERE client_id = :id",
    "booking": "SELECT row_to_json(t)::text FROM booking t WHERE client_id = :id",
    "invoices": "SELECT row_to_json(t)::text FROM invoices t WHERE client_id = :id",
    "deliveries": "SELECT row_to_json(t)::text FROM deliveries t WHERE client_id = :id",
    "sms_consents": "SELECT row_to_json(t)::text FROM sms_consents t WHERE client_id = :id",
}


async def _rows(owner_engine: Any, client_id: UUID) -> dict[str, list[str]]:
    async with owner_engine.connect() as conn:
        return {
            table: list((await conn.execute(text(sql), {"id": client_id})).scalars()) for table, sql in _ROWS.items()
        }


async def _money(owner_engine: Any, client_id: UUID) -> tuple[Any, ...]:
    async with owner_engine.connect() as conn:
        return tuple(
            (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM invoices WHERE client_id = :id),"
                        " (SELECT sum(total_cents) FROM invoices WHERE client_id = :id),"
                        " (SELECT sum(paid_cents) FROM invoices WHERE client_id = :id),"
                        " (SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                        "  WHERE i.client_id = :id),"
                        " (SELECT sum(amount_cents) FROM ledger_entries WHERE client_id = :id),"
                        " (SELECT count(*) FROM booking WHERE client_id = :id)"
                    ),
                    {"id": client_id},
                )
            ).one()
        )


async def test_erasure_leaves_no_personal_field_and_keeps_the_books(api, owner_engine):
    owner = await signup(api)
    world = await _client_world(owner_engine, owner.org_id)
    other = await _client_world(owner_engine, owner.org_id, number=10)
    client_id = world["client"]
    before = await _money(owner_engine, client_id)
    rows = await _rows(owner_engine, client_id)
    assert all(any(p in "".join(r) for r in rows.values()) for p in PERSONAL)  # the search finds them before

    erased = await api.post(f"/v1/clients/{client_id}/erasure", headers=owner.headers)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["client_id"] == str(client_id)
    assert body["counts"]["client"] == 1 and body["counts"]["invoices"] == 1 and body["counts"]["payment_methods"] == 1

    after = await _rows(owner_engine, client_id)
    dump = "\n".join("\n".join(r) for r in after.values())
    for value in PERSONAL:
        assert value not in dump, value
    assert "vip" not in dump
    # Nothing deleted but the consent to text a number we no longer hold.
    assert all(len(r) == len(rows[t]) for t, r in after.items() if t != "sms_consents")
    assert after["sms_consents"] == [] and body["counts"]["sms_consents"] == 1
    assert "SECRET-LINK" not in dump
    # The message's log line stays (kind, channel, when, what became of it), without its address.
    log = (await api.get(f"/v1/clients/{client_id}/messages", headers=owner.headers)).json()["items"]
    assert [(e["id"], e["kind"], e["status"], e["to"], e["summary"]) for e in log] == [
        (str(world["message"]), "booking.confirmed", "sent", None, None)
    ]
    assert body["counts"]["messages"] == 1
    assert await _money(owner_engine, client_id) == before
    async with owner_engine.connect() as conn:
        state = (
            await conn.execute(text("SELECT name, archived_at FROM client WHERE id = :id"), {"id": client_id})
        ).one()
        cards = (
            await conn.execute(
                text("SELECT bool_or(active) FROM payment_methods WHERE client_id = :id"), {"id": client_id}
            )
        ).scalar_one()
        audits = (
            await conn.execute(
                text("SELECT count(*) FROM admin_audit_logs WHERE action = 'client.erase' AND resource_id = :id"),
                {"id": str(client_id)},
            )
        ).scalar_one()
    assert state.name == "Erased client" and state.archived_at is not None
    assert cards is False
    assert audits == 1
    # Another client of the same organisation is untouched.
    assert "Ada Lovelace" in "".join((await _rows(owner_engine, other["client"]))["client"])

    # Idempotent: again answers the first erasure, without a second audit row.
    again = await api.post(f"/v1/clients/{client_id}/erasure", headers=owner.headers)
    assert again.status_code == 200 and again.json() == body
    shown = await api.get(f"/v1/clients/{client_id}/erasure", headers=owner.headers)
    assert shown.status_code == 200 and shown.json() == body
    async with owner_engine.connect() as conn:
        assert (
            await conn.execute(
                text("SELECT count(*) FROM admin_audit_logs WHERE action = 'client.erase'"),
            )
        ).scalar_one() == 1
    untouched = await api.get(f"/v1/clients/{other['client']}/erasure", headers=owner.headers)
    assert untouched.status_code == 200 and untouched.json() == {
        "client_id": str(other["client"]),
        "erased": False,
        "erased_at": None,
        "erased_by": None,
        "counts": {},
    }
    assert body["erased"] is True


async def test_erasure_is_refused_while_the_client_has_open_work(api, owner_engine):
    owner = await signup(api)
    world = await _client_world(owner_engine, owner.org_id, open_work=True)
    refused = await api.post(f"/v1/clients/{world['client']}/erasure", headers=owner.headers)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/client-has-open-work")
    assert {(b["kind"], b["id"]) for b in problem["blockers"]} == {
        ("unpaid_invoice", str(world["unpaid"])),
        ("future_booking", str(world["future"])),
    }
    rows = await _rows(owner_engine, world["client"])
    assert "Ada Lovelace" in "".join(rows["client"])  # nothing changed


async def test_erasure_is_refused_to_other_roles_and_other_organisations(api, owner_engine):
    owner = await signup(api, name="Org A")
    stranger = await signup(api, name="Org B")
    world = await _client_world(owner_engine, owner.org_id)
    path = f"/v1/clients/{world['client']}/erasure"
    for role in ("dispatcher", "finance", "viewer", "worker"):
        member = await add_member(api, owner, role)
        assert (await api.post(path, headers=member.headers)).status_code == 403, role
    assert (await api.post(path, headers=stranger.headers)).status_code == 404
    assert (await api.get(path, headers=stranger.headers)).status_code == 404
    assert "Ada Lovelace" in "".join((await _rows(owner_engine, world["client"]))["client"])
    admin = await add_member(api, owner, "admin")
    assert (await api.post(path, headers=admin.headers)).status_code == 200
