"""/v1/invoices/{id}/pdf and the invoice's public links, for the office.

The PDF of a draft is served too, watermarked DRAFT and without a number (a preview before
sending); an issued invoice prints from its snapshots. A link can be made only for an issued
invoice; its URL is in the one answer that makes it (a replay with the same Idempotency-Key
answers without it)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import documents, links
from spotless.domain.billing.links import InvoiceLinkCreate, InvoiceLinkCreated, InvoiceLinkRead
from spotless.domain.identity.public import Principal
from spotless.lib.errors import problems
from spotless.lib.idempotency import idempotent

VIEW = {"permission": "finance.view"}
MANAGE = {"permission": "finance.manage"}
PAY_PATH = "/v1/pay"


def pdf_response(data: bytes, filename: str) -> Response[bytes]:
    return Response(
        content=data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def pay_url_base(request: Request[Any, Any, Any]) -> str:
    """Links point at the public API route itself (GET shows the invoice, /pdf its PDF, POST
    /checkout pays it), on the address the caller reached us by."""
    return f"{str(request.base_url).rstrip('/')}{PAY_PATH}"


class InvoiceDocumentController(Controller):
    path = "/v1/invoices"
    tags = ["invoices"]

    @get(
        "/{invoice_id:uuid}/pdf",
        operation_id="getInvoicePdf",
        opt={**VIEW, "rate_limit": "expensive"},
        media_type="application/pdf",
        responses=problems(404),
        summary="The invoice or credit note as PDF (a draft is watermarked DRAFT and has no number yet)",
    )
    async def invoice_pdf(self, db_session: AsyncSession, invoice_id: UUID) -> Response[bytes]:
        data, filename = await documents.invoice_pdf(db_session, invoice_id)
        return pdf_response(data, filename)

    @post(
        "/{invoice_id:uuid}/links",
        operation_id="createInvoiceLink",
        opt=MANAGE,
        status_code=201,
        responses=problems(400, 404, 409),
        summary="Make a public link to view and pay this invoice: expires in `expires_in_days` (default 30, "
        "at most 90). Its `url` and `token` are in this answer only (never stored, never replayed).",
    )
    async def create_link(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        invoice_id: UUID,
        data: InvoiceLinkCreate,
    ) -> Response[InvoiceLinkCreated]:
        base = pay_url_base(request)
        return await idempotent(
            request,
            db_session,
            principal,
            lambda: links.create_link(db_session, principal, invoice_id, data, base),
            status_code=201,
            secret_fields=("url", "token"),
        )

    @get(
        "/{invoice_id:uuid}/links",
        operation_id="listInvoiceLinks",
        opt=VIEW,
        responses=problems(404),
        summary=f"The invoice's public links, newest first (at most {links.MAX_LINKS_LISTED}); never their URLs",
    )
    async def list_links(self, db_session: AsyncSession, invoice_id: UUID) -> list[InvoiceLinkRead]:
        return await links.list_links(db_session, invoice_id)

    @post(
        "/{invoice_id:uuid}/links/{link_id:uuid}/revoke",
        operation_id="revokeInvoiceLink",
        opt=MANAGE,
        status_code=200,
        responses=problems(404),
        summary="Revoke a public link at once (revoking it again changes nothing)",
    )
    async def revoke_link(
        self, db_session: AsyncSession, principal: Principal, invoice_id: UUID, link_id: UUID
    ) -> InvoiceLinkRead:
        return await links.revoke_link(db_session, principal, invoice_id, link_id)
