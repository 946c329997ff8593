"""Declarative bases every table uses. Tenant tables add `TenantMixin` and get RLS in their migration."""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

__all__ = ["TenantMixin", "UUIDv7AuditBase", "metadata"]

metadata = orm_registry.metadata


class TenantMixin:
    """Every tenant row belongs to exactly one organisation; RLS policies key on this column."""

    @declared_attr
    def org_id(cls) -> Mapped[UUID]:
        return mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False)
