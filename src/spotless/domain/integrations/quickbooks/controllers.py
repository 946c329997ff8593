"""/v1/quickbooks/...: the reconciliation report of the organisation's QuickBooks
sync and the office's answers (retry an item; link-or-rename a customer whose name exists there).
Owners and admins (`integrations.manage`).

Not under /v1/integrations/quickbooks: that segment is `{provider_name}` of the core's routes
(connect, callback, disconnect), and a static `quickbooks` there would shadow them."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.integrations.quickbooks import services
from spotless.domain.integrations.quickbooks.schemas import (
    ItemAccepted,
    Kind,
    ReconciliationItem,
    ReconciliationReport,
    ResolveRequest,
)
from spotless.lib.errors import problems
from spotless.lib.pagination import DEFAULT_LIMIT, Cursor, Limit

MANAGE = {"permission": "integrations.manage"}
Group = Literal["in_sync", "differs", "failed", "pending"]


class QuickBooksController(Controller):
    path = "/v1/quickbooks"
    tags = ["integrations"]

    @get(
        "/reconciliation",
        operation_id="getQuickBooksReconciliation",
        opt=MANAGE,
        responses=problems(400),
        summary="What is in sync with QuickBooks, what differs (amounts, statuses), what failed and why, and "
        "what waits to be pushed; each item says what can be done with it",
    )
    async def report(
        self,
        db_session: AsyncSession,
        group: Group | None = Parameter(query="group", required=False, default=None),
        kind: Kind | None = Parameter(query="kind", required=False, default=None),
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> ReconciliationReport:
        rows, next_cursor, has_more = await services.list_items(db_session, group, kind, cursor, limit)
        return ReconciliationReport(
            connection=services.connection_state(await services.connection(db_session)),
            summary=await services.summary(db_session),
            items=[ReconciliationItem.from_model(r) for r in rows],
            next_cursor=next_cursor,
            has_more=has_more,
            limit=limit,
        )

    @post(
        "/items/{qbo_item_id:uuid}/retry",
        operation_id="retryQuickBooksItem",
        opt=MANAGE,
        status_code=202,
        responses=problems(404, 409),
        summary="Push the item to QuickBooks again now (a refused create is attempted anew); poll the report",
    )
    async def retry(self, db_session: AsyncSession, principal: Principal, qbo_item_id: UUID) -> ItemAccepted:
        row = await services.retry(db_session, principal, qbo_item_id)
        return ItemAccepted(item=ReconciliationItem.from_model(row))

    @post(
        "/items/{qbo_item_id:uuid}/resolve",
        operation_id="resolveQuickBooksCustomer",
        opt=MANAGE,
        status_code=202,
        responses=problems(400, 404, 409),
        summary="A customer whose name exists in QuickBooks: link it to that QuickBooks customer, or push it "
        "under a unique name; never a second customer of the same name",
    )
    async def resolve(
        self, db_session: AsyncSession, principal: Principal, qbo_item_id: UUID, data: ResolveRequest
    ) -> ItemAccepted:
        row = await services.resolve(db_session, principal, qbo_item_id, data.action, data.qbo_id, data.display_name)
        return ItemAccepted(item=ReconciliationItem.from_model(row))
