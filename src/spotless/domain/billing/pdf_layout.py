"""The PDF layout of an invoice or credit note (fpdf2), behind `pdf.render`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from spotless.domain.billing.pdf import (
    ENCODING,
    STATUS_WORDS,
    TITLES,
    DocumentView,
    day,
    money,
    open_cents,
    pdf_safe,
    percent,
    printed_registration,
    quantity,
    watermark,
)

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


def render_document(view: DocumentView, *, compress: bool = True) -> bytes:
    title = TITLES.get(view.kind, "INVOICE")
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
    facts.append(("Status", STATUS_WORDS.get(view.status, pdf_safe(view.status, limit=30))))
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
