"""/v1/exports (request, poll, list), the operations guides' tax export
(/v1/admin/finance/taxes/export?from=&to=) and the dead-letter queue (/v1/admin/queue/dlq)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.exports import dead_letters, services
from spotless.domain.exports.schemas import (
    DeadLetters,
    DlqKind,
    DlqReplay,
    DlqReplayed,
    ExportCreate,
    ExportPeriod,
    ExportRead,
    ExportStatus,
)
from spotless.domain.identity.public import Principal
from spotless.lib.errors import FieldError, problems
from spotless.lib.pagination import DEFAULT_LIMIT, CursorPage
from spotless.lib.schema import Cursor, Day, Limit
from spotless.settings import Settings

RUN = {"permission": "exports.run"}
FINANCE_VIEW = {"permission": "finance.view"}
JOBS = {"permission": "jobs.manage"}
NO_STORE = {"Cache-Control": "private, no-store"}


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url)


async def _read(export: Any, principal: Principal, settings: Settings, request: Request[Any, Any, Any]) -> ExportRead:
    # No link to data the caller may not read, even if someone else requested the export.
    if not principal.can(services.KIND_PERMISSION[export.kind]):
        return ExportRead.from_model(export)
    return await services.to_read(export, settings, _base(request))


class ExportController(Controller):
    path = "/v1/exports"
    tags = ["exports"]

    @post(
        operation_id="createExport",
        summary="Request an export (bookings, clients, invoices, payments: CSV; taxes: a ZIP of CSVs). Answers "
        "202 with the export to poll; the same kind and period already in flight is answered instead.",
        opt={**RUN, "rate_limit": "expensive"},
        status_code=HTTP_202_ACCEPTED,
        responses=problems(400, 403),
    )
    async def create_export(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        data: ExportCreate,
    ) -> Response[ExportRead]:
        export, _ = await services.request_export(db_session, principal, settings, data)
        body = await _read(export, principal, settings, request)
        return Response(
            body,
            status_code=HTTP_202_ACCEPTED,
            headers={**NO_STORE, "Location": f"/v1/exports/{export.id}", "Retry-After": "2"},
        )

    @get(
        operation_id="listExports",
        summary="The organisation's exports, newest first; page with `cursor` = the previous page's `next_cursor`",
        opt=RUN,
    )
    async def list_exports(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        status: ExportStatus | None = None,
        kind: Literal["bookings", "clients", "invoices", "payments", "taxes"] | None = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[CursorPage[ExportRead]]:
        rows, next_cursor, has_more = await services.list_exports(
            db_session, principal.org_id, status=status, kind=kind, limit=limit, cursor=cursor
        )
        items = [await _read(row, principal, settings, request) for row in rows]
        return Response(services.page(items, next_cursor, has_more, limit), headers=NO_STORE)

    @get(
        "/{export_id:uuid}",
        operation_id="getExport",
        summary="An export's status and progress; once it succeeded, a short-lived download link",
        opt=RUN,
        responses=problems(404),
    )
    async def get_export(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        export_id: UUID,
    ) -> Response[ExportRead]:
        export = await services.get_export(db_session, export_id)
        return Response(await _read(export, principal, settings, request), headers=NO_STORE)


class TaxExportController(Controller):
    path = "/v1/admin/finance/taxes"
    tags = ["exports"]

    @get(
        "/export",
        operation_id="exportTaxes",
        summary="The GST/HST tax export of a period: a ZIP of CSVs (summary, invoices and credit notes, payments). "
        "Built in the background: 202 with the export to poll while it runs, 303 to its download once ready.",
        opt={**FINANCE_VIEW, "rate_limit": "expensive"},
        responses=problems(400, 403),
        status_code=HTTP_202_ACCEPTED,
    )
    async def export_taxes(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        start: Annotated[Day, Parameter(query="from", description="first day, local date")],
        end: Annotated[Day, Parameter(query="to", description="last day (inclusive), local date")],
    ) -> Response[ExportRead] | Redirect:
        if start > end:
            raise FieldError("to", "must not be before from", code="period_order")
        found = await services.latest_for_period(db_session, principal.org_id, "taxes", start, end)
        if found is not None and found.status == "succeeded":
            link = await services.download(found, settings, _base(request))
            if link:
                return Redirect(path=link["download_url"], status_code=HTTP_303_SEE_OTHER, headers=NO_STORE)
        if found is None or found.status not in ("queued", "running"):
            data = ExportCreate(kind="taxes", period=ExportPeriod(start=start, end=end), format="zip")
            found, _ = await services.request_export(db_session, principal, settings, data)
        return Response(
            ExportRead.from_model(found),
            status_code=HTTP_202_ACCEPTED,
            headers={**NO_STORE, "Location": f"/v1/exports/{found.id}", "Retry-After": "2"},
        )


class DeadLetterController(Controller):
    path = "/v1/admin/queue"
    tags = ["system"]

    @get(
        "/dlq",
        operation_id="listDeadLetters",
        summary="The organisation's dead jobs: `outbox_dead_count` (background jobs out of retries), "
        "`export_dead_count` (failed exports) and the newest `limit` of them",
        opt=JOBS,
    )
    async def list_dead(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        kind: DlqKind = "all",
        limit: Annotated[int, Parameter(ge=0, le=200)] = 50,
    ) -> Response[DeadLetters]:
        body = await dead_letters.dead_letters(
            db_session, request.app.state.redis, settings.jobs.namespace, principal.org_id, kind, limit
        )
        return Response(body, headers=NO_STORE)

    @post(
        "/dlq/replay",
        operation_id="replayDeadLetters",
        summary="Replay dead jobs of the organisation (`kind: outbox`: dead-letter ids; `kind: export`: export ids). "
        "Ids that are not this organisation's dead jobs are answered in `not_found`, never touched.",
        opt={**JOBS, "rate_limit": "admin"},
        status_code=HTTP_202_ACCEPTED,
        responses=problems(400),
    )
    async def replay(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        data: DlqReplay,
    ) -> DlqReplayed:
        if data.kind == "export":
            return await dead_letters.replay_exports(db_session, principal.org_id, data.ids)
        return await dead_letters.replay_jobs(
            db_session, request.app.state.redis, settings.jobs.namespace, principal.org_id, data.ids
        )
