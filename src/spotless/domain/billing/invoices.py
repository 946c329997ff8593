"""Invoices as drafts, and reading them.

A draft is made by hand (free lines) or from completed visits of one client (lines from each
booking's price snapshot: service, add-ons, discount). A visit is on at most one live invoice
(`invoiced_bookings`, claimed when the draft is made, freed when it is voided or deleted). Issuing,
voiding and credit notes are in `issuing`; money in `manual_payments` and the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec import UnsetType
from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.models import INVOICE_STATUSES, Invoice, InvoicedBooking, InvoiceLine
from spotless.domain.billing.schemas import InvoiceCreate, InvoiceRead, InvoiceSummary, InvoiceUpdate, LineInput
from spotless.domain.billing.settings import get_settings
from spotless.domain.billing.versions import require_version
from spotless.domain.clients.public import billing_contact
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling.public import BillableVisit, visits_by_id
from spotless.lib.errors import FieldError, Problem, not_found, register_constraint_problem
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.query import KeysetRead, flush_or_conflict, get_or_404

DRAFT_SERIES = "draft"
_MAX_QUANTITY = Decimal(10_000)
_CENTS = Decimal("0.01")


def not_draft(invoice: Invoice) -> Problem:
    return Problem(
        409,
        "invoice-not-draft",
        "The invoice is not a draft",
        f"Invoice {invoice.display_number or invoice.id} is {invoice.status}: only a draft can be changed or deleted.",
        invoice_status=invoice.status,
    )


def _already_invoiced() -> Problem:
    return Problem(
        409,
        "booking-already-invoiced",
        "The visit is already invoiced",
        "A visit is on at most one live invoice: void that invoice (or remove the visit from its draft) first.",
    )


register_constraint_problem("pk_invoiced_bookings", _already_invoiced)


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    quantity: Decimal
    unit_cents: int
    amount_cents: int
    booking_id: UUID | None = None


def _quantity(value: Decimal, field: str) -> Decimal:
    try:
        ok = value.is_finite() and Decimal(0) < value <= _MAX_QUANTITY and value == value.quantize(_CENTS)
    except InvalidOperation:
        ok = False
    if not ok:
        raise FieldError(field, "quantity must be more than 0, at most 10000, with at most 2 decimals")
    return value


def free_lines(lines: Sequence[LineInput], *, field: str = "lines") -> list[LineSpec]:
    """Lines typed by hand: amount = quantity x unit, half-up to the cent. A discount is negative,
    any other line is not."""
    out: list[LineSpec] = []
    for i, line in enumerate(lines):
        quantity = _quantity(line.quantity, f"{field}[{i}].quantity")
        amount = int((quantity * line.unit_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if line.kind == "discount" and amount > 0:
            raise FieldError(f"{field}[{i}].unit_cents", "a discount line is negative")
        if line.kind != "discount" and amount < 0:
            raise FieldError(f"{field}[{i}].unit_cents", "only a discount line may be negative")
        out.append(LineSpec(line.kind, line.description, quantity, line.unit_cents, amount))
    return out


def visit_lines(visit: BillableVisit, tz: ZoneInfo) -> list[LineSpec]:
    """A completed visit's lines from its price snapshot (never re-priced): the service and its
    room/area lines, the add-ons, and the frequency discount as a negative line."""
    day = visit.starts_at.astimezone(tz).date().isoformat()
    snapshot = visit.price or {}
    items: list[dict[str, Any]] = list(snapshot.get("line_items") or [])
    out: list[LineSpec] = []
    for n, item in enumerate(items):
        amount = int(item.get("amount_cents", 0))
        quantity, unit = int(item.get("quantity") or 1), int(item.get("unit_price_cents") or amount)
        if quantity < 1 or quantity * unit != amount:
            quantity, unit = 1, amount
        description = str(item.get("description") or "Cleaning")
        if n == 0:
            description = f"{description} ({day})"
        kind = "addon" if item.get("kind") == "addon" else "service"
        out.append(LineSpec(kind, description, Decimal(quantity), unit, amount, visit.id))
    if not out:
        amount = int(snapshot.get("subtotal_cents", visit.total_cents))
        out.append(LineSpec("service", f"Cleaning ({day})", Decimal(1), amount, amount, visit.id))
    discount = int(snapshot.get("discount_cents") or 0)
    if discount > 0:
        out.append(LineSpec("discount", "Frequency discount", Decimal(1), -discount, -discount, visit.id))
    return out


def _replace_lines(session: AsyncSession, invoice: Invoice, specs: Sequence[LineSpec], start: int = 1) -> None:
    for position, spec in enumerate(specs, start=start):
        session.add(
            InvoiceLine(
                org_id=invoice.org_id,
                invoice_id=invoice.id,
                position=position,
                kind=spec.kind,
                booking_id=spec.booking_id,
                description=spec.description,
                quantity=spec.quantity,
                unit_cents=spec.unit_cents,
                amount_cents=spec.amount_cents,
            )
        )


def _set_draft_totals(invoice: Invoice, specs: Sequence[LineSpec]) -> None:
    invoice.subtotal_cents = sum(s.amount_cents for s in specs)
    invoice.tax_cents = 0
    invoice.total_cents = invoice.subtotal_cents


async def completed_visits(session: AsyncSession, client_id: UUID, booking_ids: Sequence[UUID]) -> list[BillableVisit]:
    """The visits to bill: each must exist (404), be this client's and completed (409)."""
    if len(set(booking_ids)) != len(booking_ids):
        raise FieldError("booking_ids", "a visit is listed twice")
    visits = await visits_by_id(session, booking_ids)
    if len(visits) != len(booking_ids):
        raise not_found("booking")
    for visit in visits:
        if visit.client_id != client_id:
            raise Problem(
                409, "booking-other-client", "The visit is another client's", f"Visit {visit.id} is not this client's."
            )
        if visit.status != "completed":
            raise Problem(
                409,
                "booking-not-completed",
                "The visit is not completed",
                f"Visit {visit.id} is {visit.status}: only completed visits are invoiced.",
            )
    return visits


async def create_draft(
    session: AsyncSession,
    actor: Principal | None,
    org_id: UUID,
    tz: ZoneInfo,
    client_id: UUID,
    *,
    visits: Sequence[BillableVisit] = (),
    lines: Sequence[LineSpec] = (),
    notes: str | None = None,
    period: tuple[Any, Any] | None = None,
) -> Invoice:
    contact = await billing_contact(session, client_id, visits[0].address_id if visits else None)
    if contact is None:
        raise not_found("client")
    settings = await get_settings(session, org_id)
    invoice = Invoice(
        org_id=org_id,
        client_id=client_id,
        kind="invoice",
        series=DRAFT_SERIES,
        status="draft",
        currency=settings.currency,
        client_name=contact.name,
        client_email=contact.email,
        billing_address=contact.address,
        notes=notes,
        created_by=actor.user_id if actor else None,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
    )
    session.add(invoice)
    await session.flush()
    specs = [line for visit in visits for line in visit_lines(visit, tz)] + list(lines)
    _replace_lines(session, invoice, specs)
    _set_draft_totals(invoice, specs)
    for visit in visits:
        session.add(InvoicedBooking(org_id=org_id, booking_id=visit.id, invoice_id=invoice.id))
    await flush_or_conflict(session, "booking-already-invoiced", "A visit is already on a live invoice.")
    record_audit(
        session,
        actor,
        "invoice.create",
        "invoice",
        invoice.id,
        after={"client_id": client_id, "total_cents": invoice.total_cents, "booking_ids": [v.id for v in visits]},
        org_id=org_id,
    )
    return invoice


async def create_from_request(
    session: AsyncSession, principal: Principal, tz: ZoneInfo, data: InvoiceCreate
) -> Invoice:
    lines = free_lines(data.lines)
    visits = await completed_visits(session, data.client_id, data.booking_ids) if data.booking_ids else []
    return await create_draft(
        session, principal, principal.org_id, tz, data.client_id, visits=visits, lines=lines, notes=data.notes
    )


async def locked(session: AsyncSession, invoice_id: UUID) -> Invoice:
    """The invoice, locked for this transaction (404 when not visible)."""
    return await get_or_404(session, Invoice, invoice_id, "invoice", with_for_update=True, populate_existing=True)


async def lines_of(session: AsyncSession, invoice_id: UUID) -> list[InvoiceLine]:
    return list(
        await session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.position)
        )
    )


async def update_draft(
    session: AsyncSession, principal: Principal, invoice_id: UUID, data: InvoiceUpdate, *, if_match: str | None = None
) -> Invoice:
    invoice = await locked(session, invoice_id)
    require_version(if_match, invoice.version)  # under the row lock: a racing editor has finished
    if invoice.status != "draft":
        raise not_draft(invoice)
    before = {"total_cents": invoice.total_cents, "notes": invoice.notes}
    if not isinstance(data.lines, UnsetType):
        specs = free_lines(data.lines)
        await session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
        # Visits no longer on any line are freed for another invoice.
        await session.execute(delete(InvoicedBooking).where(InvoicedBooking.invoice_id == invoice.id))
        _replace_lines(session, invoice, specs)
        _set_draft_totals(invoice, specs)
    if not isinstance(data.notes, UnsetType):
        invoice.notes = data.notes
    invoice.version += 1
    await session.flush()
    after = {"total_cents": invoice.total_cents, "notes": invoice.notes}
    record_audit(session, principal, "invoice.update", "invoice", invoice.id, before=before, after=after)
    return invoice


async def delete_draft(session: AsyncSession, principal: Principal, invoice_id: UUID) -> None:
    """Only a draft is deleted (its visits freed); an issued invoice is voided or credited."""
    invoice = await locked(session, invoice_id)
    if invoice.status != "draft":
        raise not_draft(invoice)
    record_audit(
        session, principal, "invoice.delete", "invoice", invoice.id, before={"total_cents": invoice.total_cents}
    )
    await session.delete(invoice)
    await session.flush()


# --- reads -------------------------------------------------------------------------------------

SUMMARY_COLUMNS: tuple[Any, ...] = (
    Invoice.id,
    Invoice.kind,
    Invoice.client_id,
    Invoice.credit_for_id,
    Invoice.number,
    Invoice.display_number,
    Invoice.status,
    Invoice.overdue,
    Invoice.disputed,
    Invoice.currency,
    Invoice.issued_at,
    Invoice.due_on,
    Invoice.client_name,
    Invoice.subtotal_cents,
    Invoice.tax_cents,
    Invoice.total_cents,
    Invoice.paid_cents,
    Invoice.refunded_cents,
    Invoice.created_at,
    Invoice.updated_at,
)
# Newest first, on the (org_id, created_at, id) index.
INVOICE_ORDER: Keyset[Any] = Keyset(
    "invoices",
    [Invoice.created_at, Invoice.id],
    [datetime, UUID],
    descending=True,
    key=lambda row: (row.created_at, row.id),
)


@dataclass(frozen=True)
class InvoiceFilters:
    status: str | None = None
    client_id: UUID | None = None
    overdue: bool | None = None
    kind: str | None = None


def _list_statement(shape: tuple[bool, bool, bool, bool]) -> Select[Any]:
    """The list for one shape (which of status, client, overdue, kind filter it), every value
    bound by name: each shape compiles once (lib.query.KeysetRead), as the bookings list."""
    has_status, has_client, has_overdue, has_kind = shape
    stmt = select(*SUMMARY_COLUMNS).where(Invoice.org_id == bindparam("org_id"))
    if has_status:
        stmt = stmt.where(Invoice.status == bindparam("status"))
    if has_client:
        stmt = stmt.where(Invoice.client_id == bindparam("client_id"))
    if has_overdue:
        stmt = stmt.where(Invoice.overdue == bindparam("overdue"))
    if has_kind:
        stmt = stmt.where(Invoice.kind == bindparam("kind"))
    return stmt


_LIST = KeysetRead(INVOICE_ORDER, _list_statement)


async def list_invoices(
    session: AsyncSession, org_id: UUID, filters: InvoiceFilters, *, limit: int, cursor: str | None
) -> CursorPage[InvoiceSummary]:
    if filters.status and filters.status not in INVOICE_STATUSES:
        raise FieldError("status", f"status must be one of {', '.join(INVOICE_STATUSES)}")
    if filters.kind and filters.kind not in ("invoice", "credit_note"):
        raise FieldError("kind", "kind must be invoice or credit_note")
    values = {
        "org_id": org_id,
        "status": filters.status or None,
        "client_id": filters.client_id,
        "overdue": filters.overdue,
        "kind": filters.kind or None,
    }
    shape = tuple(values[n] is not None for n in ("status", "client_id", "overdue", "kind"))
    params = {k: v for k, v in values.items() if v is not None}
    return await _LIST.page(session, shape, params, cursor=cursor, limit=limit, to=InvoiceSummary.from_row)


async def invoice_read(session: AsyncSession, invoice_id: UUID, invoice: Invoice | None = None) -> InvoiceRead:
    """The invoice with its lines and the visits on it (404 when not visible)."""
    if invoice is None:
        invoice = await get_or_404(session, Invoice, invoice_id, "invoice", populate_existing=True)
    lines = await lines_of(session, invoice.id)
    booking_ids = list(dict.fromkeys(line.booking_id for line in lines if line.booking_id is not None))
    return InvoiceRead.of(invoice, lines, booking_ids)
