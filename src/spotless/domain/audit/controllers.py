"""GET /v1/admin/audit: the organisation's admin audit trail, newest first, with filters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from advanced_alchemy.service import OffsetPagination
from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.models import AdminAuditLog
from spotless.domain.audit.schemas import AuditEntry
from spotless.domain.audit.services import list_audit
from spotless.domain.identity.principal import Principal
from spotless.lib.bounds import Instant

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size (max 200)")]
Offset = Annotated[int, Parameter(ge=0)]


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
        summary="Admin audit trail (filters: action, resource, actor, time)",
        opt={"permission": "audit.view"},
    )
    async def list_entries(
        self,
        db_session: AsyncSession,
        principal: Principal,
        limit: Limit = 50,
        offset: Offset = 0,
        action: Annotated[list[str] | None, Parameter(description="One or more actions, e.g. user.create")] = None,
        resource_type: list[str] | None = None,
        resource_id: Annotated[str | None, Parameter(max_length=64)] = None,
        actor_user_id: UUID | None = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
    ) -> OffsetPagination[AuditEntry]:
        page = await list_audit(
            db_session,
            principal.org_id,
            limit=limit,
            offset=offset,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            actor_user_id=actor_user_id,
            created_after=created_after,
            created_before=created_before,
        )
        return OffsetPagination(items=[to_entry(r) for r in page.items], total=page.total, limit=limit, offset=offset)
