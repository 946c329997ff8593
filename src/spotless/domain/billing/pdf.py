"""Invoices and credit notes as PDF, from a plain view (no database, no ORM): `render(view)`.

fpdf2 with its core fonts (Helvetica, WinAnsi/cp1252): pure Python, no system binaries, nothing
bundled. Text outside cp1252 is transliterated (`pdf_safe`: "Ł" -> "L", "ﬁ" -> "fi"; accents
that cp1252 has are kept, "Zoë" stays "Zoë") and what has no Latin form ("王") prints as "?";
control and format characters (NUL, bidi overrides) are dropped. No name can make it raise.

What Canada asks an invoice to show depends on its total (Input Tax Information Regulations;
Quebec's QST rules mirror them), see `legal_tier`:
- under $100: the supplier's name, the date, the total;
- $100 to $499.99: also the GST/HST registration number (and the QST number for Quebec, the PST
  number where PST is charged) and the tax charged, per rate;
- $500 and over: also the buyer's name, a description of each supply, and the terms of payment.
The renderer always prints the lines, the taxes per rate, the buyer and the due date when it has
them (the tiers are a floor); the registration numbers print from $100 and on every credit note
(a credit note must carry the registration number whatever its amount, ETA s. 232(3)), never
below. `missing_for_law(view)` names what the law asks for that the view lacks (an organisation
without a GST/HST number issuing a $200 taxed invoice), for the issuing path to warn about.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import IntEnum
from typing import Literal

import msgspec
from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

# --- the view ---------------------------------------------------------------------------------


class Party(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    address_lines: tuple[str, ...] = ()
    email: str | None = None


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    gst_hst_number: str | None = None
    qst_number: str | None = None
    pst_number: str | None = None


class DocumentLine(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # 'service'|'addon'|'discount'|'custom'|'tax'
    description: str
    amount_cents: int
    quantity: Decimal = Decimal(1)
    unit_cents: int | None = None
    tax_name: str | None = None
    tax_rate: Decimal | None = None


class DocumentView(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice or credit note as printed. Dates are the organisation's local days."""

    kind: Literal["invoice", "credit_note"] = "invoice"
    status: str
    org: Party
    registration: Registration = Registration()
    client: Party
    display_number: str | None = None
    currency: str = "CAD"
    issue_date: date | None = None
    due_on: date | None = None
    payment_terms_days: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    tax_region: str | None = None
    credit_for_number: str | None = None
    lines: tuple[DocumentLine, ...] = ()
    subtotal_cents: int = 0
    tax_cents: int = 0
    total_cents: int = 0
    paid_cents: int = 0
    refunded_cents: int = 0
    notes: str | None = None


# --- what the law asks for ----------------------------------------------------------------------


class Tier(IntEnum):
    BASIC = 1  # < $100
    REGISTRATION = 2  # $100 - $499.99
    FULL = 3  # >= $500


REGISTRATION_FROM_CENTS = 100_00
FULL_FROM_CENTS = 500_00


def legal_tier(total_cents: int) -> Tier:
    amount = abs(total_cents)
    if amount >= FULL_FROM_CENTS:
        return Tier.FULL
    if amount >= REGISTRATION_FROM_CENTS:
        return Tier.REGISTRATION
    return Tier.BASIC


def _tax_names(view: DocumentView) -> set[str]:
    return {(line.tax_name or "").upper() for line in view.lines if line.kind == "tax"}


def _is_quebec(view: DocumentView) -> bool:
    return (view.tax_region or "").upper() == "QC" or "QST" in _tax_names(view)


def printed_registration(view: DocumentView) -> list[tuple[str, str]]:
    """The registration numbers this document prints, as (label, number)."""
    if view.kind != "credit_note" and legal_tier(view.total_cents) < Tier.REGISTRATION:
        return []
    reg = view.registration
    taxes = _tax_names(view)
    out: list[tuple[str, str]] = []
    if reg.gst_hst_number and reg.gst_hst_number.strip():
        out.append(("GST/HST No.", reg.gst_hst_number.strip()))
    if reg.qst_number and reg.qst_number.strip() and _is_quebec(view):
        out.append(("QST No.", reg.qst_number.strip()))
    if reg.pst_number and reg.pst_number.strip() and "PST" in taxes:
        out.append(("PST No.", reg.pst_number.strip()))
    return out


def missing_for_law(view: DocumentView) -> list[str]:
    """What the document's tier requires that the view does not have (empty: nothing)."""
    tier = legal_tier(view.total_cents)
    missing: list[str] = []
    if not view.org.name.strip():
        missing.append("supplier name")
    if view.issue_date is None:
        missing.append("issue date")
    taxes = _tax_names(view)
    if tier >= Tier.REGISTRATION or view.kind == "credit_note":
        if taxes & {"GST", "HST"} and not (view.registration.gst_hst_number or "").strip():
            missing.append("GST/HST registration number")
        if "QST" in taxes and not (view.registration.qst_number or "").strip():
            missing.append("QST registration number")
    if tier >= Tier.FULL:
        if not view.client.name.strip():
            missing.append("buyer name")
        if any(not line.description.strip() for line in view.lines if line.kind != "tax"):
            missing.append("description of each supply")
        if view.kind == "invoice" and view.due_on is None and view.payment_terms_days is None:
            missing.append("terms of payment")
    return missing


# --- text that core fonts can print --------------------------------------------------------------

ENCODING = "cp1252"  # what the core fonts' WinAnsiEncoding holds
# Letters without a decomposition, and punctuation cp1252 lacks (\u escapes: several look like ASCII).
_LETTERS = dict(
    zip(
        "\u0141\u0142\u0110\u0111\u0126\u0127\u0131\u013f\u0140\u0166\u0167\u0138\u014a\u014b\u017f\u018f\u0259\u0190\u025b",
        "LlDdHhiLlTtkNnsEeEe",
        strict=True,
    )
) | {
    "\u0149": "'n",
    "\u1e9e": "SS",
    **dict.fromkeys("\u2010\u2011\u2012\u2015\u2212", "-"),
    "\u2039": "<",
    "\u203a": ">",
    "\u2032": "'",
    "\u2033": '"',
    "\u2007": " ",
    "\u202f": " ",
}


def _encodable(char: str) -> bool:
    try:
        char.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def _transliterate(char: str) -> str:
    if char in _LETTERS:
        return _LETTERS[char]
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) and _encodable(c))
    if kept and all(unicodedata.category(c)[0] not in "C" for c in kept):
        return kept
    return "?"


def pdf_safe(text: str | None, *, multiline: bool = False, limit: int = 300, max_lines: int = 12) -> str:
    """`text` as the core fonts can print it: never raises. At most `limit` characters and
    `max_lines` lines (a longer text ends in "..."): no field can make a table row taller than a
    page, which fpdf2 refuses."""
    if not text:
        return ""
    out: list[str] = []
    clipped = len(text) > limit
    for char in text[:limit]:
        if char in "\r\n\t\v\f\u2028\u2029\x85":
            out.append("\n" if multiline and char in "\n\u2028\u2029" else " ")
            continue
        category = unicodedata.category(char)
        if category.startswith("C") or category in ("Zl", "Zp"):
            # Controls, format characters (bidi overrides, zero-width), surrogates, private use.
            continue
        if unicodedata.combining(char):
            continue  # a stray combining mark: its base was printed already
        out.append(char if _encodable(char) else _transliterate(char))
    result = "".join(out).strip() if not multiline else "".join(out).strip("\n ")
    if multiline and result.count("\n") >= max_lines:
        result = "\n".join(result.split("\n")[:max_lines]).rstrip()
        clipped = True
    return f"{result}..." if clipped else result


# --- formatting --------------------------------------------------------------------------------

_SYMBOLS = {"CAD": "$", "USD": "US$", "EUR": "€", "GBP": "£"}


def money(cents: int, currency: str = "CAD") -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    symbol = _SYMBOLS.get(currency.upper())
    number = f"{whole:,}.{part:02d}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(rate: Decimal | None) -> str:
    return "" if rate is None else f"{_number(Decimal(rate))}%"


def quantity(value: Decimal) -> str:
    return _number(Decimal(value))


def day(value: date | None) -> str:
    return value.isoformat() if value else ""


_TITLES = {"invoice": "INVOICE", "credit_note": "CREDIT NOTE"}
_WATERMARKS = {"draft": "DRAFT", "void": "VOID", "paid": "PAID", "refunded": "REFUNDED"}
_STATUS_WORDS = {
    "draft": "Draft",
    "issued": "Issued",
    "partially_paid": "Partially paid",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
    "partially_refunded": "Partially refunded",
    "refunded": "Refunded",
}


def open_cents(view: DocumentView) -> int:
    """What is still owed (as `billing.ledger.open_cents`): nothing on a draft, void or
    uncollectible document, nor on a credit note."""
    if view.kind == "credit_note" or view.status in ("void", "draft", "uncollectible"):
        return 0
    return max(view.total_cents - view.paid_cents, 0)


def watermark(view: DocumentView) -> str | None:
    return _WATERMARKS.get(view.status)


# --- rendering ---------------------------------------------------------------------------------

_EPOCH = date(2000, 1, 1)
_GREY = (110, 110, 110)
_HEAD = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self.core_fonts_encoding = ENCODING
        self._footer_text = footer_text
        self._watermark: str | None = None

    def header(self) -> None:
        if not self._watermark:
            return
        with self.local_context(fill_opacity=0.12, text_color=(160, 0, 0)):
            self.set_font("Helvetica", "B", 90)
            width = self.get_string_width(self._watermark)
            x, y = (self.w - width) / 2, self.h / 2 + 15
            with self.rotation(angle=35, x=self.w / 2, y=self.h / 2):
                self.text(x, y, self._watermark)
        self.set_font("Helvetica", "", 10)

    def footer(self) -> None:
        self.set_y(-12)
        with self.local_context(text_color=_GREY):
            self.set_font("Helvetica", "", 8)
            self.cell(0, 5, f"{self._footer_text}  -  page {self.page_no()}/{{nb}}", align=Align.C)


def render(view: DocumentView, *, compress: bool = True) -> bytes:
    """The document as PDF bytes. Deterministic for a given view (no clock, fixed file id)."""
    title = _TITLES.get(view.kind, "INVOICE")
    number = pdf_safe(view.display_number, limit=60) or "(not numbered)"
    pdf = _Document(f"{title.title()} {number}")
    pdf.set_compression(compress)
    # No clock in the file: the same document gives the same bytes (and file id).
    pdf.set_creation_date(datetime.combine(view.issue_date or _EPOCH, time(), UTC))
    pdf.set_producer("Spotless")
    pdf.set_title(f"{title.title()} {number}")
    pdf.set_author(pdf_safe(view.org.name))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(15, 15, 15)
    pdf._watermark = watermark(view)
    pdf.add_page()
    _header(pdf, view, title, number)
    _parties(pdf, view)
    _lines(pdf, view)
    _totals(pdf, view)
    _notes(pdf, view)
    return bytes(pdf.output())


def _header(pdf: _Document, view: DocumentView, title: str, number: str) -> None:
    top = pdf.get_y()
    left_width = pdf.epw * 0.58
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(left_width, 7, pdf_safe(view.org.name) or " ", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    for line in view.org.address_lines:
        pdf.multi_cell(left_width, 4.5, pdf_safe(line) or " ", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if view.org.email:
        pdf.multi_cell(left_width, 4.5, pdf_safe(view.org.email), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for label, value in printed_registration(view):
        pdf.multi_cell(left_width, 4.5, f"{label} {pdf_safe(value, limit=60)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()

    right_x = pdf.l_margin + left_width + 4
    right_width = pdf.epw - left_width - 4
    pdf.set_xy(right_x, top)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(right_width, 8, title, align=Align.R, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    facts: list[tuple[str, str]] = [("Number", number)]
    if view.issue_date:
        facts.append(("Date", day(view.issue_date)))
    if view.kind == "invoice" and view.due_on:
        facts.append(("Due", day(view.due_on)))
    if view.kind == "invoice" and view.payment_terms_days is not None:
        facts.append(("Terms", f"Net {view.payment_terms_days} days"))
    if view.period_start and view.period_end:
        facts.append(("Period", f"{day(view.period_start)} to {day(view.period_end)}"))
    if view.credit_for_number:
        facts.append(("Credits invoice", pdf_safe(view.credit_for_number, limit=60)))
    facts.append(("Status", _STATUS_WORDS.get(view.status, pdf_safe(view.status, limit=30))))
    for label, value in facts:
        pdf.set_x(right_x)
        pdf.multi_cell(right_width, 4.5, f"{label}: {value}", align=Align.R, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_xy(pdf.l_margin, max(left_bottom, pdf.get_y()) + 6)


def _parties(pdf: _Document, view: DocumentView) -> None:
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, "Bill to" if view.kind == "invoice" else "Credit to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(pdf.epw * 0.6, 5, pdf_safe(view.client.name) or " ", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    for line in view.client.address_lines:
        pdf.multi_cell(pdf.epw * 0.6, 4.5, pdf_safe(line) or " ", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if view.client.email:
        pdf.multi_cell(pdf.epw * 0.6, 4.5, pdf_safe(view.client.email), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)


def _lines(pdf: _Document, view: DocumentView) -> None:
    pdf.set_font("Helvetica", "", 9)
    items = [line for line in view.lines if line.kind != "tax"]
    with pdf.table(
        col_widths=(58, 10, 16, 16),
        headings_style=_HEAD,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        text_align=(Align.L, Align.R, Align.R, Align.R),
        line_height=5,
        padding=1.2,
        wrapmode=WrapMode.CHAR,
        repeat_headings=1,
    ) as table:
        head = table.row()
        for heading in ("Description", "Qty", "Unit price", "Amount"):
            head.cell(heading)
        for line in items:
            row = table.row()
            row.cell(pdf_safe(line.description, multiline=True, limit=1000) or "-")
            row.cell(quantity(line.quantity))
            row.cell(money(line.unit_cents, view.currency) if line.unit_cents is not None else "")
            row.cell(money(line.amount_cents, view.currency))
    pdf.ln(3)


def _totals(pdf: _Document, view: DocumentView) -> None:
    rows: list[tuple[str, str, bool]] = [("Subtotal", money(view.subtotal_cents, view.currency), False)]
    for line in view.lines:
        if line.kind == "tax":
            label = pdf_safe(line.tax_name or line.description, limit=30) or "Tax"
            rate = percent(line.tax_rate)
            rows.append((f"{label} ({rate})" if rate else label, money(line.amount_cents, view.currency), False))
    total_label = "Total credited" if view.kind == "credit_note" else "Total"
    rows.append((f"{total_label} ({view.currency.upper()})", money(view.total_cents, view.currency), True))
    if view.kind == "invoice":
        if view.paid_cents:
            rows.append(("Paid", money(-view.paid_cents, view.currency), False))
        if view.refunded_cents:
            rows.append(("Refunded", money(view.refunded_cents, view.currency), False))
        if view.status != "draft":
            rows.append(("Amount due", money(open_cents(view), view.currency), True))
    label_x = pdf.l_margin + pdf.epw * 0.5
    for label, value, bold in rows:
        if pdf.will_page_break(6):
            pdf.add_page()
        pdf.set_x(label_x)
        pdf.set_font("Helvetica", "B" if bold else "", 10 if bold else 9)
        pdf.cell(pdf.epw * 0.3, 5.5, label, align=Align.R)
        pdf.cell(pdf.epw * 0.2, 5.5, value, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _notes(pdf: _Document, view: DocumentView) -> None:
    notes = pdf_safe(view.notes, multiline=True, limit=5000, max_lines=60)
    if not notes:
        return
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, "Notes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 4.5, notes, wrapmode=WrapMode.CHAR, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


__all__ = [
    "DocumentLine",
    "DocumentView",
    "Party",
    "Registration",
    "Tier",
    "legal_tier",
    "missing_for_law",
    "money",
    "open_cents",
    "pdf_safe",
    "printed_registration",
    "render",
]
