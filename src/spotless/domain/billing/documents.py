"""An invoice as a document: the PDF's view built from its rows (`load_document`), the PDF
itself (`invoice_pdf`), and what a public link shows of it (`pay_view`).

Everything printed comes from the invoice's own snapshots (client name, e-mail and billing
address, registration numbers, tax rates per line) so a later change to the client or to the
organisation's settings does not rewrite an issued invoice. A draft has no snapshot of the
registration numbers yet: the organisation's current ones are shown (with a DRAFT watermark).
Read paths select columns, never ORM rows."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.checkout import MIN_CHARGE_CENTS, PAYABLE_STATUSES
from spotless.domain.billing.models import Invoice, InvoiceLine
from spotless.domain.billing.pdf import DocumentLine, DocumentView, Party, Registration, open_cents, render
from spotless.domain.billing.settings import get_settings
from spotless.domain.identity.public import org_letterhead
from spotless.lib.errors import not_found
from spotless.lib.schema import Output

_INVOICE_COLUMNS = (
    Invoice.id,
    Invoice.org_id,
    Invoice.kind,
    Invoice.status,
    Invoice.overdue,
    Invoice.credit_for_id,
    Invoice.display_number,
    Invoice.currency,
    Invoice.issued_at,
    Invoice.due_on,
    Invoice.period_start,
    Invoice.period_end,
    Invoice.tax_region,
    Invoice.client_name,
    Invoice.client_email,
    Invoice.billing_address,
    Invoice.registration,
    Invoice.notes,
    Invoice.subtotal_cents,
    Invoice.tax_cents,
    Invoice.total_cents,
    Invoice.paid_cents,
    Invoice.refunded_cents,
)
_LINE_COLUMNS = (
    InvoiceLine.kind,
    InvoiceLine.description,
    InvoiceLine.quantity,
    InvoiceLine.unit_cents,
    InvoiceLine.amount_cents,
    InvoiceLine.tax_name,
    InvoiceLine.tax_rate,
)


def address_lines(address: Any) -> tuple[str, ...]:
    """A billing-address snapshot as printed lines: the clients' shape (line1, line2, city,
    region, postal_code, country), or plain text, or a list of lines."""
    if not address:
        return ()
    if isinstance(address, str):
        return tuple(line for line in address.splitlines() if line.strip())
    if isinstance(address, list | tuple):
        return tuple(str(line) for line in address if str(line).strip())
    if not isinstance(address, dict):
        return ()
    locality = " ".join(str(address[k]) for k in ("city", "region", "postal_code") if address.get(k))
    parts = [address.get("line1"), address.get("line2"), locality, address.get("country")]
    return tuple(str(part) for part in parts if part and str(part).strip())


def _registration(snapshot: Any) -> Registration | None:
    if not isinstance(snapshot, dict):
        return None
    return Registration(
        gst_hst_number=_text(snapshot.get("gst_hst_number")),
        qst_number=_text(snapshot.get("qst_number")),
        pst_number=_text(snapshot.get("pst_number")),
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


async def load_document(session: AsyncSession, invoice_id: UUID) -> DocumentView:
    """The invoice as its PDF prints it (404 when this organisation has no such invoice)."""
    return (await _load(session, invoice_id))[0]


async def _load(session: AsyncSession, invoice_id: UUID) -> tuple[DocumentView, bool]:
    row = (await session.execute(select(*_INVOICE_COLUMNS).where(Invoice.id == invoice_id))).first()
    if row is None:
        raise not_found("invoice")
    lines = (
        await session.execute(
            select(*_LINE_COLUMNS)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position, InvoiceLine.id)
        )
    ).all()
    letterhead = await org_letterhead(session, row.org_id)
    registration = _registration(row.registration)
    terms_days: int | None = None
    if registration is None or row.status == "draft":
        settings = await get_settings(session, row.org_id)
        registration = Registration(
            gst_hst_number=settings.gst_hst_number, qst_number=settings.qst_number, pst_number=settings.pst_number
        )
        terms_days = settings.payment_terms_days
    zone = ZoneInfo(letterhead.timezone)
    issue_date: date | None = row.issued_at.astimezone(zone).date() if row.issued_at else None
    if issue_date and row.due_on:
        terms_days = max((row.due_on - issue_date).days, 0)
    credit_for_number = None
    if row.credit_for_id is not None:
        credit_for_number = (
            await session.execute(select(Invoice.display_number).where(Invoice.id == row.credit_for_id))
        ).scalar_one_or_none()
    org_lines = [*(letterhead.address or "").splitlines(), letterhead.contact_phone or ""]
    view = DocumentView(
        kind=row.kind,
        status=row.status,
        org=Party(
            name=letterhead.name,
            address_lines=tuple(line for line in org_lines if line.strip()),
            email=letterhead.contact_email,
        ),
        registration=registration,
        client=Party(name=row.client_name, address_lines=address_lines(row.billing_address), email=row.client_email),
        display_number=row.display_number,
        currency=row.currency,
        issue_date=issue_date,
        due_on=row.due_on,
        payment_terms_days=terms_days if row.kind == "invoice" else None,
        period_start=row.period_start,
        period_end=row.period_end,
        tax_region=row.tax_region,
        credit_for_number=credit_for_number,
        lines=tuple(
            DocumentLine(
                kind=line.kind,
                description=line.description,
                quantity=Decimal(line.quantity),
                unit_cents=line.unit_cents if line.kind != "tax" else None,
                amount_cents=line.amount_cents,
                tax_name=line.tax_name,
                tax_rate=line.tax_rate,
            )
            for line in lines
        ),
        subtotal_cents=row.subtotal_cents,
        tax_cents=row.tax_cents,
        total_cents=row.total_cents,
        paid_cents=row.paid_cents,
        refunded_cents=row.refunded_cents,
        notes=row.notes,
    )
    return view, bool(row.overdue)


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def pdf_filename(view: DocumentView) -> str:
    stem = _UNSAFE_FILENAME.sub("-", view.display_number or "draft").strip("-.")[:60] or "invoice"
    return f"{stem}.pdf"


class RenderedCache:
    """The last few PDFs this process rendered, keyed by the SHA-256 of their whole view: a view
    that changes in any way (a payment, a void, the organisation's new address) is a new key, so
    nothing stale is ever served, and two views with the same key print the same bytes anyway."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    @staticmethod
    def key(view: DocumentView) -> bytes:
        return hashlib.sha256(msgspec.json.encode(view)).digest()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: bytes) -> bytes | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: bytes, data: bytes) -> None:
        self._items[key] = data
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


rendered = RenderedCache()


async def invoice_pdf(session: AsyncSession, invoice_id: UUID) -> tuple[bytes, str]:
    """The PDF and its file name. Rendering is pure Python (~60 ms for a few lines, ~5 ms more
    per line): it runs on a worker thread so the event loop keeps serving meanwhile, and a client
    opening the same link again gets the bytes already made (`rendered`)."""
    view = await load_document(session, invoice_id)
    key = RenderedCache.key(view)
    data = rendered.get(key)
    if data is None:
        data = await anyio.to_thread.run_sync(render, view)
        rendered.put(key, data)
    return data, pdf_filename(view)


# --- what a public link shows --------------------------------------------------------------------


class PayLine(Output):
    description: str
    quantity: Decimal
    unit_cents: int
    amount_cents: int


class PayTax(Output):
    name: str
    rate: Decimal | None
    amount_cents: int


class PayInvoice(Output):
    """One invoice as its public link shows it: no client or invoice ids, nothing of any other
    invoice. `payable` says whether paying by card (the checkout route) applies."""

    number: str | None
    kind: str
    status: str
    overdue: bool
    org_name: str
    currency: str
    issued_on: date | None
    due_on: date | None
    lines: list[PayLine]
    taxes: list[PayTax]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    paid_cents: int
    open_cents: int
    payable: bool


async def pay_view(session: AsyncSession, invoice_id: UUID) -> PayInvoice:
    view, overdue = await _load(session, invoice_id)
    due = open_cents(view)
    return PayInvoice(
        number=view.display_number,
        kind=view.kind,
        status=view.status,
        overdue=overdue and due > 0,
        org_name=view.org.name,
        currency=view.currency,
        issued_on=view.issue_date,
        due_on=view.due_on,
        lines=[
            PayLine(
                description=line.description,
                quantity=line.quantity,
                unit_cents=line.unit_cents or 0,
                amount_cents=line.amount_cents,
            )
            for line in view.lines
            if line.kind != "tax"
        ],
        taxes=[
            PayTax(name=line.tax_name or line.description, rate=line.tax_rate, amount_cents=line.amount_cents)
            for line in view.lines
            if line.kind == "tax"
        ],
        subtotal_cents=view.subtotal_cents,
        tax_cents=view.tax_cents,
        total_cents=view.total_cents,
        paid_cents=view.paid_cents,
        open_cents=due,
        # What `POST /v1/pay/{token}/checkout` accepts (billing.checkout.payable_amount).
        payable=view.kind == "invoice" and view.status in PAYABLE_STATUSES and due >= MIN_CHARGE_CENTS,
    )
