"""/v1/invoices/{id}/refunds (ask for a refund, list an invoice's refunds) and /v1/disputes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import disputes, refunds
from spotless.domain.billing.disputes import DisputeRead
from spotless.domain.billing.models import Refund
from spotless.domain.billing.refunds import RefundMethod
from spotless.domain.identity.public import Principal
from spotless.lib.idempotency import idempotent
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.schema import NO_NUL, Cursor, CursorPage, Input, Limit, Output, Reason
from spotless.settings import Settings

VIEW = {"permission": "finance.view"}
MANAGE = {"permission": "finance.manage"}

IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, description="Retry-safe: same key + body replays"),
]


class RefundCreate(Input):
    amount_cents: Annotated[int, Meta(ge=1, le=100_000_000, description="minor units of the invoice's currency")]
    reason: Reason
    method: (
        Annotated[
            RefundMethod,
            Meta(description="card: back to the card payment at Stripe; etransfer/cash/cheque: refunded by hand"),
        ]
        | None
    ) = None
    reference: Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)] | None = None


class RefundRead(Output):
    id: UUID
    invoice_id: UUID
    amount_cents: int
    reason: str | None
    status: str
    stripe_refund_id: str | None
    failure_reason: str | None
    requested_by: UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: Refund) -> RefundRead:
        return cls(**{f: getattr(row, f) for f in cls.__struct_fields__})


class InvoiceRefundsController(Controller):
    path = "/v1/invoices/{invoice_id:uuid}/refunds"
    tags = ["payments"]

    @post(
        operation_id="createRefund",
        summary="Refund an invoice, fully or partly (never more than paid less refunded and pending); a card "
        "refund is final when Stripe says succeeded",
        opt=MANAGE,
    )
    async def create_refund(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        invoice_id: UUID,
        data: RefundCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RefundRead]:
        async def produce() -> RefundRead:
            row = await refunds.create_refund(
                db_session,
                settings,
                principal,
                invoice_id,
                amount_cents=data.amount_cents,
                reason=data.reason,
                method=data.method,
                reference=data.reference,
                idempotency_key=idempotency_key,
            )
            return RefundRead.from_model(row)

        return await idempotent(request, db_session, principal, produce, status_code=201)

    @get(operation_id="listInvoiceRefunds", summary="An invoice's refunds, oldest first", opt=VIEW)
    async def list_refunds(self, db_session: AsyncSession, invoice_id: UUID) -> list[RefundRead]:
        return [RefundRead.from_model(r) for r in await refunds.list_refunds(db_session, invoice_id)]


class DisputeController(Controller):
    path = "/v1/disputes"
    tags = ["payments"]

    @get(
        operation_id="listDisputes",
        summary="Card disputes (chargebacks), newest first; `state` open or closed",
        opt=VIEW,
    )
    async def list_disputes(
        self,
        db_session: AsyncSession,
        state_filter: Annotated[
            str | None, Parameter(query="state", pattern=r"^(open|closed)$", description="open or closed")
        ] = None,
        invoice_id: UUID | None = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CursorPage[DisputeRead]:
        return await disputes.list_disputes(
            db_session, state=state_filter, invoice_id=invoice_id, limit=limit, cursor=cursor
        )
