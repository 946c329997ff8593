"""The invoice PDF: what Canada asks it to show at each total, and names that cannot break it."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from spotless.domain.billing.pdf import (
    ENCODING,
    DocumentLine,
    DocumentView,
    Party,
    Registration,
    Tier,
    legal_tier,
    missing_for_law,
    money,
    pdf_safe,
    render,
)
from tests.support.pdf_text import pdf_text

GST = "123456789 RT0001"
QST = "1234567890 TQ0001"
PST = "PST-1234-5678"
REGISTERED = Registration(gst_hst_number=GST, qst_number=QST, pst_number=PST)
RATES = {"GST": Decimal("5.000"), "HST": Decimal("13.000"), "QST": Decimal("9.975"), "PST": Decimal("7.000")}


def invoice(
    subtotal: int,
    taxes: tuple[str, ...] = ("HST",),
    *,
    region: str = "ON",
    kind: str = "invoice",
    status: str = "issued",
    client: str = "Avery Client",
    registration: Registration = REGISTERED,
    paid: int = 0,
    description: str = "Standard clean, 2 bedrooms",
    notes: str | None = None,
) -> DocumentView:
    tax_lines = []
    for name in taxes:
        amount = int((Decimal(subtotal) * RATES[name] / 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
        tax_lines.append(
            DocumentLine(kind="tax", description=name, tax_name=name, tax_rate=RATES[name], amount_cents=amount)
        )
    tax = sum(line.amount_cents for line in tax_lines)
    return DocumentView(
        kind=kind,  # type: ignore[arg-type]
        status=status,
        org=Party(name="Sparkle & Shine Ltd.", address_lines=("12 King St W", "Toronto ON M5H 1A1")),
        registration=registration,
        client=Party(name=client, address_lines=("4 Elm Ave",), email="avery@example.com"),
        display_number="INV-2026-000042" if status != "draft" else None,
        issue_date=date(2026, 12, 1) if status != "draft" else None,
        due_on=date(2026, 12, 15),
        payment_terms_days=14,
        tax_region=region,
        lines=(
            DocumentLine(
                kind="service", description=description, quantity=Decimal(1), unit_cents=subtotal, amount_cents=subtotal
            ),
            *tax_lines,
        ),
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=subtotal + tax,
        paid_cents=paid,
        notes=notes,
    )


def text_of(view: DocumentView) -> str:
    return pdf_text(render(view, compress=False))


def test_the_tiers_follow_the_total_including_tax():
    assert legal_tier(99_99) is Tier.BASIC
    assert legal_tier(100_00) is Tier.REGISTRATION
    assert legal_tier(499_99) is Tier.REGISTRATION
    assert legal_tier(500_00) is Tier.FULL
    assert legal_tier(-600_00) is Tier.FULL  # a credit note's amount counts whatever its sign
    # $88.50 + 13 % HST = $100.01: the tax takes it over the line.
    assert invoice(88_50).total_cents == 100_01


def test_under_100_dollars_prints_the_basics_and_no_registration_number():
    text = text_of(invoice(80_00))  # $90.40 with HST
    assert "Sparkle & Shine Ltd." in text
    assert "Date: 2026-12-01" in text
    assert "$90.40" in text
    assert "HST (13%)" in text
    assert "No." not in text and GST not in text


def test_from_100_dollars_the_gst_hst_number_and_the_tax_per_rate_print():
    text = text_of(invoice(88_50))  # $100.01
    assert f"GST/HST No. {GST}" in text
    assert "HST (13%)" in text and "$11.51" in text
    # Ontario charges no QST or PST: those numbers stay off even though the organisation has them.
    assert QST not in text and PST not in text


def test_quebec_prints_the_qst_number_with_both_taxes():
    text = text_of(invoice(200_00, ("GST", "QST"), region="QC"))
    assert f"GST/HST No. {GST}" in text
    assert f"QST No. {QST}" in text
    assert "GST (5%)" in text and "$10.00" in text
    assert "QST (9.975%)" in text and "$19.95" in text


def test_quebec_under_100_dollars_prints_neither_number():
    text = text_of(invoice(50_00, ("GST", "QST"), region="QC"))
    assert GST not in text and QST not in text


def test_pst_number_prints_where_pst_is_charged():
    text = text_of(invoice(150_00, ("GST", "PST"), region="BC"))
    assert f"PST No. {PST}" in text and f"GST/HST No. {GST}" in text
    assert "PST (7%)" in text


def test_from_500_dollars_buyer_description_and_terms_are_on_it():
    view = invoice(450_00)  # $508.50
    assert legal_tier(view.total_cents) is Tier.FULL
    text = text_of(view)
    assert "Avery Client" in text
    assert "Standard clean, 2 bedrooms" in text
    assert "Terms: Net 14 days" in text and "Due: 2026-12-15" in text
    assert f"GST/HST No. {GST}" in text
    assert missing_for_law(view) == []


def test_missing_for_law_names_what_the_tier_needs_and_the_view_lacks():
    unregistered = Registration()
    assert missing_for_law(invoice(50_00, registration=unregistered)) == []
    assert missing_for_law(invoice(100_00, registration=unregistered)) == ["GST/HST registration number"]
    qc = invoice(100_00, ("GST", "QST"), region="QC", registration=Registration(gst_hst_number=GST))
    assert missing_for_law(qc) == ["QST registration number"]
    big = invoice(600_00, client="  ", description="")
    assert missing_for_law(big) == ["buyer name", "description of each supply"]


def test_a_credit_note_prints_the_registration_number_whatever_its_amount():
    view = invoice(10_00, kind="credit_note")
    text = text_of(view)
    assert "CREDIT NOTE" in text
    assert f"GST/HST No. {GST}" in text
    assert "Total credited (CAD)" in text
    assert "Amount due" not in text


def test_status_watermarks_and_the_amount_due():
    assert "PAID" in text_of(invoice(100_00, status="paid", paid=113_00)).splitlines()
    assert "VOID" in text_of(invoice(100_00, status="void")).splitlines()
    assert "DRAFT" in text_of(invoice(100_00, status="draft")).splitlines()
    partly = text_of(invoice(100_00, status="partially_paid", paid=50_00))
    lines = partly.splitlines()
    assert not {"PAID", "VOID", "DRAFT"} & set(lines)
    assert "Paid" in lines and "-$50.00" in lines
    assert lines[lines.index("Amount due") + 1] == "$63.00"
    void = text_of(invoice(100_00, status="void")).splitlines()
    assert void[void.index("Amount due") + 1] == "$0.00"


HOSTILE = [
    "Zoë Ł. 王",
    "Zoë\x00 Ł.\u202e 王",  # NUL and a right-to-left override
    "Robert'); DROP TABLE invoices;-- (\\) Tj ET",
    "Ωmega 😀 \U0001d54f \ud800 \ufeff\u200b",  # emoji, maths letters, a lone surrogate, BOM, zero width
    "ﬁnance ﬀ Straße Œuvre “quoted” — €5 … ½",
    "e\u0301\u0301\u0301 \u0301",  # stacked and stray combining marks
    "x" * 5000,
    "line one\nline two\r\n\tthree\u2028four",
    "",
    "   ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_render_everywhere_they_can_appear(name: str):
    view = DocumentView(
        status="issued",
        org=Party(name=name, address_lines=(name, name)),
        registration=Registration(gst_hst_number=name),
        client=Party(name=name, address_lines=(name,), email=name),
        display_number=name,
        issue_date=date(2026, 12, 1),
        credit_for_number=name,
        lines=(
            DocumentLine(kind="service", description=name, unit_cents=600_00, amount_cents=600_00),
            DocumentLine(kind="tax", description=name, tax_name=name, tax_rate=Decimal("13"), amount_cents=78_00),
        ),
        subtotal_cents=600_00,
        tax_cents=78_00,
        total_cents=678_00,
        notes=name,
    )
    data = render(view)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert "$678.00" in pdf_text(data)


def test_what_a_hostile_name_prints_as():
    text = text_of(invoice(50_00, client="Zoë Ł. 王"))
    assert "Zoë L. ?" in text.splitlines()
    # Parentheses and backslashes are escaped in the content stream, so they print as written.
    text = text_of(invoice(50_00, client="Robert') Tj (x\\"))
    assert "Robert') Tj (x\\" in text.splitlines()
    assert "ﬁne “quote” Œ €" not in text
    assert pdf_safe("ﬁne “quote” Œ € Straße") == "fine “quote” Œ € Straße"
    assert pdf_safe("a\x00b\u202ec\u200bd") == "abcd"
    assert pdf_safe("one\ntwo", multiline=True) == "one\ntwo"
    assert pdf_safe("one\ntwo") == "one two"


def test_pdf_safe_never_raises_and_always_fits_the_font():
    rng = random.Random(12)
    for _ in range(300):
        sample = "".join(chr(rng.choice((rng.randrange(0, 0x3000), rng.randrange(0, 0x110000)))) for _ in range(40))
        for multiline in (False, True):
            out = pdf_safe(sample, multiline=multiline)
            out.encode(ENCODING)
            assert "\x00" not in out


def test_a_long_invoice_flows_onto_more_pages_with_its_totals():
    base = invoice(10_00)
    lines = tuple(
        DocumentLine(kind="service", description=f"Visit {n} - weekly clean", unit_cents=10_00, amount_cents=10_00)
        for n in range(1, 121)
    )
    view = DocumentView(**{**{f: getattr(base, f) for f in base.__struct_fields__}, "lines": lines})
    text = text_of(view)
    assert "Visit 120 - weekly clean" in text
    assert text.count("Description") >= 2  # the headings repeat on every page
    pages = render(view, compress=False).count(b"/Type /Page\n")
    assert pages >= 3
    assert f"page {pages}/\n{pages}" in text  # the page total is filled in at the end (its own string)
    assert text.index("Visit 120 - weekly clean") < text.index("Total (CAD)")


def test_the_same_invoice_gives_the_same_bytes():
    view = invoice(250_00, ("GST", "QST"), region="QC", status="paid", paid=287_44)
    assert render(view) == render(view)


def test_money_formats_cents_exactly():
    assert money(0) == "$0.00"
    assert money(123_456_78) == "$123,456.78"
    assert money(-5) == "-$0.05"
    assert money(1_00, "CHF") == "1.00 CHF"
