"""Recording and reading the admin audit trail.

`record_audit` adds the row to the caller's session, so it commits or rolls back with the change
it describes. The request id and client address come from the request context (set by the
request-id and authentication middleware); public routes pass the address explicitly."""

from __future__ import annotations

from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.models import AdminAuditLog
from spotless.domain.audit.schemas import AuditEntryRead
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.query import cursor_page
from spotless.lib.request_context import current_request_id

_client_ip: ContextVar[str | None] = ContextVar("audit_client_ip", default=None)


class Actor(Protocol):
    """What an audit row needs to know about who acted (a Principal satisfies it)."""

    @property
    def user_id(self) -> UUID: ...

    @property
    def org_id(self) -> UUID: ...

    @property
    def email(self) -> str: ...

    @property
    def role(self) -> str: ...


def set_client_ip(address: str | None) -> Token[str | None]:
    return _client_ip.set(address)


def reset_client_ip(token: Token[str | None]) -> None:
    _client_ip.reset(token)


class AuditRepository(SQLAlchemyAsyncRepository[AdminAuditLog]):
    model_type = AdminAuditLog


class AuditService(SQLAlchemyAsyncRepositoryService[AdminAuditLog, AuditRepository]):
    repository_type = AuditRepository


def record_audit(
    session: AsyncSession,
    actor: Actor | None,
    action: str,
    resource_type: str,
    resource_id: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    *,
    org_id: UUID | None = None,
    meta: dict[str, Any] | None = None,
    client_ip: str | None = None,
) -> AdminAuditLog:
    """Add an audit row to the current transaction. `actor` None means the system (or a
    not-yet-authenticated caller such as signup, then pass `org_id`)."""
    target_org = org_id or (actor.org_id if actor else None)
    if target_org is None:
        raise ValueError("an audit row needs an organisation")
    row = AdminAuditLog(
        org_id=target_org,
        actor_user_id=actor.user_id if actor else None,
        actor_email=actor.email if actor else None,
        admin_role=actor.role if actor else None,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        before=_jsonable(before),
        after=_jsonable(after),
        meta=_jsonable(meta) or {},
        request_id=current_request_id(),
        client_ip=client_ip or _client_ip.get(),
    )
    session.add(row)
    return row


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, on both sides: the summary an auditor actually reads."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (UUID, datetime)):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value


AUDIT_ORDER: Keyset[AdminAuditLog] = Keyset(
    "audit",
    [AdminAuditLog.created_at, AdminAuditLog.id],
    [datetime, UUID],
    descending=True,
    key=lambda row: (row.created_at, row.id),
)


async def list_audit(
    session: AsyncSession,
    org_id: UUID,
    *,
    limit: int,
    cursor: str | None = None,
    action: list[str] | None = None,
    resource_type: list[str] | None = None,
    resource_id: str | None = None,
    actor_user_id: UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> CursorPage[AuditEntryRead]:
    """Newest first, in the caller's organisation (also enforced by RLS): a keyset page on
    (org_id, created_at, id), so a deep page costs what the first does and nothing is counted."""
    stmt = select(AdminAuditLog).where(AdminAuditLog.org_id == org_id)
    if action:
        stmt = stmt.where(AdminAuditLog.action.in_(action))
    if resource_type:
        stmt = stmt.where(AdminAuditLog.resource_type.in_(resource_type))
    if resource_id:
        stmt = stmt.where(AdminAuditLog.resource_id == resource_id)
    if actor_user_id:
        stmt = stmt.where(AdminAuditLog.actor_user_id == actor_user_id)
    if created_after:
        stmt = stmt.where(AdminAuditLog.created_at > created_after)
    if created_before:
        stmt = stmt.where(AdminAuditLog.created_at < created_before)
    return await cursor_page(session, stmt, AUDIT_ORDER, cursor=cursor, limit=limit, to=AuditEntryRead.from_model)
