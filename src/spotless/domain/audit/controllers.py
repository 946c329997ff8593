"""GET /v1/admin/audit: the organisation's admin audit trail, newest first, with filters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.models import AdminAuditLog
from spotless.domain.audit.schemas import AuditEntry
from spotless.domain.audit.services import list_audit
from spotless.domain.identity.principal import Principal
from spotless.lib.bounds import Instant
from spotless.lib.pagination import DEFAULT_LIMIT, Cursor, CursorPage, Limit


def to_entry(row: AdminAuditLog) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        created_at=row.created_at,
        actor_user_id=row.actor_user_id,
        actor_email=row.actor_email,
        admin_role=row.admin_role,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        before=row.before,
        after=row.after,
        metadata=row.meta or {},
        request_id=row.request_id,
        client_ip=row.client_ip,
    )


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
    ) -> CursorPage[AuditEntry]:
        rows, next_cursor, has_more = await list_audit(
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
        return CursorPage(items=[to_entry(r) for r in rows], next_cursor=next_cursor, has_more=has_more, limit=limit)
