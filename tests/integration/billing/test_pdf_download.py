"""GET /v1/invoices/{id}/pdf: the office downloads what the client is sent."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update

from spotless.domain.billing.models import BillingSettings, Invoice
from tests.support.factories import add, arrange, new_client, new_issued_invoice
from tests.support.factories.billing import new_invoice, new_invoice_line
from tests.support.factories.billing_documents import GST_NUMBER, QST_NUMBER
from tests.support.identity import add_member, signup
from tests.support.pdf_text import pdf_text


async def _pdf(client, member, invoice_id) -> tuple[object, str]:
    response = await client.get(f"/v1/invoices/{invoice_id}/pdf", headers=member.headers)
    return response, pdf_text(response.content) if response.status_code == 200 else ""


async def test_an_issued_invoice_downloads_as_its_pdf(client, owner_engine):
    owner = await signup(client, name="Sparkle Cleaning")
    finance = await add_member(client, owner, "finance")
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Ada Client")
        invoice = await new_issued_invoice(db, owner.org_id, person.id, number=7)

    response, text = await _pdf(client, finance, invoice.id)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="INV-2026-000007.pdf"'
    assert "no-store" in response.headers["cache-control"]
    lines = text.splitlines()
    assert "Sparkle Cleaning" in lines and "INVOICE" in lines
    assert "Number: INV-2026-000007" in lines
    # $200 + 13 % HST = $226: the registration number is required and printed, tax per rate.
    assert f"GST/HST No. {GST_NUMBER}" in lines
    assert "HST (13%)" in lines and "$26.00" in lines
    assert "Ada Client" in lines and "1 Main St" in lines
    assert "Deep clean, 3 bedrooms" in lines
    assert lines[lines.index("Amount due") + 1] == "$226.00"
    assert "Terms: Net 14 days" in lines


async def test_a_small_invoice_prints_no_registration_number(client, owner_engine):
    owner = await signup(client)
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        invoice = await new_issued_invoice(db, owner.org_id, person.id, items=(("Touch-up", 50_00),))
    _, text = await _pdf(client, owner, invoice.id)
    assert "$56.50" in text and "HST (13%)" in text
    assert GST_NUMBER not in text


async def test_quebec_prints_both_numbers_from_the_issue_snapshot(client, owner_engine):
    owner = await signup(client, timezone="America/Montreal")
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        invoice = await new_issued_invoice(
            db, owner.org_id, person.id, taxes=("GST", "QST"), region="QC",
            registration={"gst_hst_number": GST_NUMBER, "qst_number": QST_NUMBER},
        )  # fmt: skip
        # The organisation changes its numbers after issuing: the invoice keeps what it was issued with.
        await add(db, BillingSettings(org_id=owner.org_id, gst_hst_number="999999999 RT9999"))
    _, text = await _pdf(client, owner, invoice.id)
    assert f"GST/HST No. {GST_NUMBER}" in text and f"QST No. {QST_NUMBER}" in text
    assert "999999999" not in text
    assert "GST (5%)" in text and "QST (9.975%)" in text


async def test_a_draft_is_a_watermarked_preview_with_the_current_numbers(client, owner_engine):
    owner = await signup(client)
    async with arrange(owner_engine) as db:
        await add(db, BillingSettings(org_id=owner.org_id, gst_hst_number=GST_NUMBER, payment_terms_days=30))
        person = await new_client(db, owner.org_id)
        draft = await new_invoice(db, owner.org_id, person.id, subtotal_cents=300_00, total_cents=300_00)
        await new_invoice_line(db, draft, description="Move-out clean")
    response, text = await _pdf(client, owner, draft.id)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'inline; filename="draft.pdf"'
    lines = text.splitlines()
    assert "DRAFT" in lines and "Number: (not numbered)" in lines
    assert f"GST/HST No. {GST_NUMBER}" in lines and "Terms: Net 30 days" in lines
    assert "Amount due" not in lines


async def test_paid_void_and_credit_notes_say_so(client, owner_engine):
    owner = await signup(client)
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        paid = await new_issued_invoice(db, owner.org_id, person.id, number=1, status="paid", paid_cents=226_00)
        void = await new_issued_invoice(db, owner.org_id, person.id, number=2, status="void")
        credit = await new_invoice(
            db, owner.org_id, person.id, kind="credit_note", credit_for_id=paid.id, series="CN", number=1,
            display_number="CN-000001", status="issued", subtotal_cents=20_00, total_cents=20_00,
            registration={"gst_hst_number": GST_NUMBER},
        )  # fmt: skip
        await new_invoice_line(db, credit, description="Missed bathroom", quantity=Decimal(1))
    _, text = await _pdf(client, owner, paid.id)
    assert "PAID" in text.splitlines() and "-$226.00" in text
    _, text = await _pdf(client, owner, void.id)
    lines = text.splitlines()
    assert "VOID" in lines and lines[lines.index("Amount due") + 1] == "$0.00"
    _, text = await _pdf(client, owner, credit.id)
    lines = text.splitlines()
    assert "CREDIT NOTE" in lines and "Credits invoice: INV-2026-000001" in lines
    assert f"GST/HST No. {GST_NUMBER}" in lines  # on a credit note whatever its amount


async def test_a_hostile_client_name_still_downloads(client, owner_engine):
    owner = await signup(client, name="Zoë Ł. 王 Cleaning")
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        invoice = await new_issued_invoice(
            db, owner.org_id, person.id, client_name="Zoë Ł. 王\u202e) Tj", notes="x" * 4000,
            billing_address={"line1": "\x01\x02 Rue de l'Église", "city": "Québec", "country": "CA"},
        )  # fmt: skip
    response, text = await _pdf(client, owner, invoice.id)
    assert response.status_code == 200
    lines = text.splitlines()
    assert "Zoë L. ? Cleaning" in lines and "Zoë L. ?) Tj" in lines
    assert "Rue de l'Église" in lines


async def test_other_organisations_and_roles_without_finance_view_get_nothing(client, owner_engine):
    owner = await signup(client, name="Org A")
    other = await signup(client, name="Org B")
    dispatcher = await add_member(client, owner, "dispatcher")
    viewer = await add_member(client, owner, "viewer")
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        invoice = await new_issued_invoice(db, owner.org_id, person.id)
    response, _ = await _pdf(client, other, invoice.id)
    assert response.status_code == 404 and response.json()["type"] == "/problems/not-found"
    for member in (dispatcher, viewer):
        response, _ = await _pdf(client, member, invoice.id)
        assert response.status_code == 403
    async with arrange(owner_engine) as db:
        await db.execute(update(Invoice).where(Invoice.id == invoice.id).values(notes="still mine"))
    response, text = await _pdf(client, owner, invoice.id)
    assert response.status_code == 200 and "still mine" in text


async def test_a_repeat_download_is_the_same_file_and_a_change_is_never_served_stale(client, owner_engine):
    from spotless.domain.billing.documents import rendered

    owner = await signup(client)
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id)
        invoice = await new_issued_invoice(db, owner.org_id, person.id)
    first, _ = await _pdf(client, owner, invoice.id)
    cached = len(rendered)
    second, _ = await _pdf(client, owner, invoice.id)
    assert second.content == first.content and len(rendered) == cached  # served, not rendered again

    async with arrange(owner_engine) as db:  # paid in full meanwhile
        await db.execute(update(Invoice).where(Invoice.id == invoice.id).values(status="paid", paid_cents=226_00))
    third, text = await _pdf(client, owner, invoice.id)
    lines = text.splitlines()
    assert third.content != first.content
    assert "PAID" in lines and lines[lines.index("Amount due") + 1] == "$0.00"
