"""Admin audit trail: append-only for the application (UPDATE/DELETE revoked in migration 0002)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase


class AdminAuditLog(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "admin_audit_logs"
    # The keyset order of the list (newest first: scanned backwards).
    __table_args__ = (Index("ix_admin_audit_logs_org_created_id", "org_id", "created_at", "id"),)

    # No foreign key on the actor: a trail must outlive the people in it (and the app role may
    # not update these rows, which an ON DELETE SET NULL would need).
    actor_user_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    actor_email: Mapped[str | None] = mapped_column(String(320), default=None)
    admin_role: Mapped[str | None] = mapped_column(String(20), default=None)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64), default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    client_ip: Mapped[str | None] = mapped_column(String(64), default=None)
