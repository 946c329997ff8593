"""The retention context's tables (migration 0022)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.mixins import AuditColumns
from advanced_alchemy.types import GUID
from sqlalchemy import CheckConstraint, ForeignKey, Integer, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk


class RetentionSettings(DefaultBase, AuditColumns):
    """An organisation's own retention, in days (absent: the RETENTION_* defaults)."""

    __tablename__ = "retention_settings"
    __table_args__ = (
        CheckConstraint("message_body_days BETWEEN 1 AND 3660", name="message_days"),
        CheckConstraint("export_days BETWEEN 1 AND 3660", name="export_days"),
        CheckConstraint("photo_days BETWEEN 1 AND 3660", name="photo_days"),
    )

    org_id: Mapped[UUID] = mapped_column(GUID(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True)
    message_body_days: Mapped[int] = mapped_column(Integer)
    export_days: Mapped[int] = mapped_column(Integer)
    photo_days: Mapped[int] = mapped_column(Integer)


class ClientErasure(UUIDv7AuditBase, TenantMixin):
    """One erased client (append-only for the app role): who asked and what was removed."""

    __tablename__ = "client_erasures"
    __table_args__ = (
        tenant_fk("client_id", "client", ondelete="RESTRICT"),
        UniqueConstraint("org_id", "client_id", name="uq_client_erasures_org_id_client_id"),
    )

    client_id: Mapped[UUID] = mapped_column()
    erased_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
