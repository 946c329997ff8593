"""/v1/invoices/{id}/followup: where the chase of an unpaid invoice stands, and stopping it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import followup
from spotless.domain.billing.models import Followup, FollowupStep
from spotless.domain.billing.settings import get_settings
from spotless.domain.identity.public import Principal
from spotless.lib.errors import problems
from spotless.lib.schema import Output

VIEW = {"permission": "finance.view"}
MANAGE = {"permission": "finance.manage"}


class FollowupStepRead(Output):
    step: int
    ran_at: datetime


class FollowupRead(Output):
    id: UUID
    client_id: UUID
    reason: str  # charge_failed | overdue
    status: str  # active | resolved | stopped
    step: int  # steps run so far
    steps: list[FollowupStepRead]
    hold_applied: bool  # the client's visits are (or were, until resolved) on payment hold
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InvoiceFollowupRead(Output):
    """Where the chase of an invoice stands: its follow-up (the active one, else the last; null when
    it was never chased) and the organisation's schedule as set now."""

    invoice_id: UUID
    schedule_days: list[int]  # days after the start on which a step runs
    hold_after_step: int | None  # the step after which the client's visits go on payment hold
    followup: FollowupRead | None = None


def _read(row: Followup, steps: list[FollowupStep]) -> FollowupRead:
    return FollowupRead(
        id=row.id,
        client_id=row.client_id,
        reason=row.reason,
        status=row.status,
        step=row.step,
        steps=[FollowupStepRead(step=s.step, ran_at=s.ran_at) for s in steps],
        hold_applied=row.hold_applied,
        next_run_at=row.next_run_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _answer(session: AsyncSession, principal: Principal, invoice_id: UUID) -> InvoiceFollowupRead:
    found = await followup.latest_followup(session, invoice_id)
    settings = await get_settings(session, principal.org_id)
    return InvoiceFollowupRead(
        invoice_id=invoice_id,
        schedule_days=followup.schedule_days(settings),
        hold_after_step=settings.followup_hold_after_step,
        followup=_read(*found) if found else None,
    )


class FollowupController(Controller):
    path = "/v1/invoices/{invoice_id:uuid}/followup"
    tags = ["invoices"]

    @get(
        operation_id="getInvoiceFollowup",
        opt=VIEW,
        responses=problems(404),
        summary="The follow-up of an unpaid invoice (the active one, else the last; null if never chased): its "
        "steps so far, the next one, and whether the client's visits are on payment hold",
    )
    async def get_followup(
        self, db_session: AsyncSession, principal: Principal, invoice_id: UUID
    ) -> InvoiceFollowupRead:
        return await _answer(db_session, principal, invoice_id)

    @post(
        "/stop",
        operation_id="stopInvoiceFollowup",
        opt=MANAGE,
        status_code=200,
        responses=problems(404, 409),
        summary="Stop chasing the invoice: no more steps, and the client's visits are released if it held them "
        "(409 followup-not-active when nothing is being chased)",
    )
    async def stop_followup(
        self, db_session: AsyncSession, principal: Principal, invoice_id: UUID
    ) -> InvoiceFollowupRead:
        await followup.stop_followup(db_session, principal, invoice_id)
        await db_session.flush()
        return await _answer(db_session, principal, invoice_id)
