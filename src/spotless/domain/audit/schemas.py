"""Audit log entries as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from spotless.lib.schema import Output

if TYPE_CHECKING:
    from spotless.domain.audit.models import AdminAuditLog


class AuditEntryRead(Output):
    id: UUID
    created_at: datetime
    actor_user_id: UUID | None
    actor_email: str | None
    admin_role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    metadata: dict[str, Any]
    request_id: str | None
    client_ip: str | None

    @classmethod
    def from_model(cls, row: AdminAuditLog) -> AuditEntryRead:
        return cls(
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
