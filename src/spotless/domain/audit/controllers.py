"""GET /v1/admin/audit: the organisation's admin audit trail, newest first, with filters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.schemas import AuditEntryRead
from spotless.domain.audit.services import list_audit
from spotless.domain.identity.public import Principal
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.schema import Cursor, CursorPage, Instant, Limit


class AuditController(Controller):
    path = "/v1/admin/audit"
    tags = ["audit"]

    @get(
        operation_id="listAuditLog",
        summary="Admin audit trail, newest first (filters: action, resource, actor, time); page with `cursor`",
        opt={"permission": "audit.view"},
    )
    async def list_entries(
        self,
        db_session: AsyncSession,
        principal: Principal,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        action: Annotated[list[str] | None, Parameter(description="One or more actions, e.g. user.create")] = None,
        resource_type: list[str] | None = None,
        resource_id: Annotated[str | None, Parameter(max_length=64)] = None,
        actor_user_id: UUID | None = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
    ) -> CursorPage[AuditEntryRead]:
        return await list_audit(
            db_session,
            principal.org_id,
            limit=limit,
            cursor=cursor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            actor_user_id=actor_user_id,
            created_after=created_after,
            created_before=created_before,
        )
