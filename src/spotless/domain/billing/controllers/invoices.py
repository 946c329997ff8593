"""/v1/invoices: drafts, issuing, voiding, writing off, credit notes and manual payments."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import invoices, issuing, manual_payments
from spotless.domain.billing.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceRead,
    InvoiceSummary,
    InvoiceUncollectible,
    InvoiceUpdate,
    InvoiceVoid,
    PaymentCreate,
    PaymentRead,
)
from spotless.domain.billing.versions import IfMatch, etag
from spotless.domain.identity.public import OrgProfile, Principal
from spotless.lib.errors import problems
from spotless.lib.idempotency import idempotent
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.schema import Cursor, CursorPage, Limit

VIEW = {"permission": "invoices.view"}
EDIT = {"permission": "invoices.edit"}
SEND = {"permission": "invoices.send"}
MANAGE = {"permission": "finance.manage"}
RECORD = {"permission": "payments.record"}

IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, description="Retry-safe: same key + body replays"),
]


class InvoiceController(Controller):
    path = "/v1/invoices"
    tags = ["invoices"]

    @post(
        operation_id="createInvoice",
        opt=EDIT,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="A draft invoice: free lines, and/or `booking_ids` (completed visits of the client, "
        "lines from each visit's price snapshot). Send an Idempotency-Key.",
    )
    async def create_invoice(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        org: OrgProfile,
        data: InvoiceCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[InvoiceRead]:
        async def produce() -> InvoiceRead:
            invoice = await invoices.create_from_request(db_session, principal, ZoneInfo(org.timezone), data)
            return await invoices.invoice_read(db_session, invoice.id, invoice)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @get(
        operation_id="listInvoices",
        opt=VIEW,
        responses=problems(400),
        summary="Invoices and credit notes, newest first, filtered by status, client, overdue or kind; "
        "page with `cursor` = the previous page's `next_cursor`",
    )
    async def list_invoices(
        self,
        db_session: AsyncSession,
        principal: Principal,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        client_id: UUID | None = None,
        overdue: bool | None = None,
        kind: Annotated[str | None, Parameter(max_length=20)] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CursorPage[InvoiceSummary]:
        filters = invoices.InvoiceFilters(status=status, client_id=client_id, overdue=overdue, kind=kind)
        return await invoices.list_invoices(db_session, principal.org_id, filters, limit=limit, cursor=cursor)

    @get(
        "/{invoice_id:uuid}",
        operation_id="getInvoice",
        opt=VIEW,
        responses=problems(404),
        summary="One invoice; its `ETag` header (its version) is what `If-Match` on a change names",
    )
    async def get_invoice(self, db_session: AsyncSession, invoice_id: UUID) -> Response[InvoiceRead]:
        read = await invoices.invoice_read(db_session, invoice_id)
        return Response(read, headers={"ETag": etag(read.version)})

    @patch(
        "/{invoice_id:uuid}",
        operation_id="updateInvoice",
        opt=EDIT,
        responses=problems(400, 404, 409, 412),
        summary="Change a draft's lines (replaced whole) or notes; 409 invoice-not-draft once issued. Send "
        "If-Match with the ETag you read: 412 precondition-failed if the invoice changed since",
    )
    async def update_invoice(
        self,
        db_session: AsyncSession,
        principal: Principal,
        invoice_id: UUID,
        data: InvoiceUpdate,
        if_match: IfMatch = None,
    ) -> Response[InvoiceRead]:
        invoice = await invoices.update_draft(db_session, principal, invoice_id, data, if_match=if_match)
        read = await invoices.invoice_read(db_session, invoice.id, invoice)
        return Response(read, headers={"ETag": etag(read.version)})

    @delete(
        "/{invoice_id:uuid}",
        operation_id="deleteInvoice",
        opt=EDIT,
        status_code=204,
        responses=problems(404, 409),
        summary="Delete a draft (its visits are freed). Issued invoices are never deleted: void or credit them",
    )
    async def delete_invoice(self, db_session: AsyncSession, principal: Principal, invoice_id: UUID) -> None:
        await invoices.delete_draft(db_session, principal, invoice_id)

    @post(
        "/{invoice_id:uuid}/issue",
        operation_id="issueInvoice",
        opt=SEND,
        status_code=200,
        responses=problems(404, 409),
        summary="Issue a draft: its number, taxes by the service address's province, due date and snapshots",
    )
    async def issue_invoice(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, invoice_id: UUID
    ) -> InvoiceRead:
        invoice = await issuing.issue(db_session, principal, principal.org_id, ZoneInfo(org.timezone), invoice_id)
        return await invoices.invoice_read(db_session, invoice.id, invoice)

    @post(
        "/{invoice_id:uuid}/void",
        operation_id="voidInvoice",
        opt=MANAGE,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Void a draft or an issued invoice with nothing paid (its visits can be invoiced again)",
    )
    async def void_invoice(
        self, db_session: AsyncSession, principal: Principal, invoice_id: UUID, data: InvoiceVoid
    ) -> InvoiceRead:
        invoice = await issuing.void(db_session, principal, invoice_id, data.reason)
        return await invoices.invoice_read(db_session, invoice.id, invoice)

    @post(
        "/{invoice_id:uuid}/uncollectible",
        operation_id="markInvoiceUncollectible",
        opt=MANAGE,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Write off an open invoice",
    )
    async def mark_uncollectible(
        self, db_session: AsyncSession, principal: Principal, invoice_id: UUID, data: InvoiceUncollectible
    ) -> InvoiceRead:
        invoice = await issuing.mark_uncollectible(db_session, principal, invoice_id, data.reason)
        return await invoices.invoice_read(db_session, invoice.id, invoice)

    @post(
        "/{invoice_id:uuid}/credit-notes",
        operation_id="createCreditNote",
        opt=MANAGE,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="A credit note against an issued invoice (its own CN number; never more than the invoice's "
        "total less earlier credit notes); applied to what the invoice still owes, the rest is client credit",
    )
    async def create_credit_note(
        self, db_session: AsyncSession, principal: Principal, org: OrgProfile, invoice_id: UUID, data: CreditNoteCreate
    ) -> InvoiceRead:
        note = await issuing.credit_note(db_session, principal, ZoneInfo(org.timezone), invoice_id, data)
        return await invoices.invoice_read(db_session, note.id, note)

    @post(
        "/{invoice_id:uuid}/payments",
        operation_id="recordInvoicePayment",
        opt=RECORD,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="Record an e-transfer, cash or cheque payment; more than the open amount is 409 unless "
        "keep_as_credit (the excess becomes the client's credit). Send an Idempotency-Key.",
    )
    async def record_payment(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        invoice_id: UUID,
        data: PaymentCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PaymentRead]:
        async def produce() -> PaymentRead:
            return await manual_payments.record_payment(db_session, principal, invoice_id, data)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @post(
        "/{invoice_id:uuid}/apply-credit",
        operation_id="applyClientCredit",
        opt=MANAGE,
        status_code=200,
        responses=problems(404, 409),
        summary="Pay what an open invoice owes from the client's credit (an overpayment kept, a credit note's "
        "rest), as far as it goes; issuing applies it to new invoices by itself. 409 no-client-credit when none",
    )
    async def apply_credit(self, db_session: AsyncSession, principal: Principal, invoice_id: UUID) -> PaymentRead:
        return await manual_payments.apply_credit(db_session, principal, invoice_id)
