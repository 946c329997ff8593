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

fpdf2 costs ~0.6 s to import: the layout (`pdf_layout`) loads on the first render, not with the API.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from enum import IntEnum
from typing import Literal

import msgspec

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


TITLES = {"invoice": "INVOICE", "credit_note": "CREDIT NOTE"}
_WATERMARKS = {"draft": "DRAFT", "void": "VOID", "paid": "PAID", "refunded": "REFUNDED"}
STATUS_WORDS = {
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


def render(view: DocumentView, *, compress: bool = True) -> bytes:
    """The document as PDF bytes. Deterministic for a given view (no clock, fixed file id)."""
    from spotless.domain.billing.pdf_layout import render_document

    return render_document(view, compress=compress)


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
