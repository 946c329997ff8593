"""Declarative bases every table uses. Tenant tables add `TenantMixin` and get RLS in their migration.

References between tenant tables are composite: `(x_id, org_id)` onto `UNIQUE (id, org_id)` of the
target (`tenant_key`), declared once with `tenant_fk`. Row-level security does not apply to
referential checks (PostgreSQL runs them as the table owner), so a plain `x_id` foreign key would
accept another organisation's id; the composite one makes the database itself refuse it.
"""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from sqlalchemy import ForeignKey, ForeignKeyConstraint, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

__all__ = ["TenantMixin", "UUIDv7AuditBase", "metadata", "tenant_fk", "tenant_key"]

metadata = orm_registry.metadata


class TenantMixin:
    """Every tenant row belongs to exactly one organisation; RLS policies key on this column."""

    @declared_attr
    def org_id(cls) -> Mapped[UUID]:
        return mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False)


def tenant_key(table: str) -> UniqueConstraint:
    """`UNIQUE (org_id, id)` on a tenant table that other tenant tables reference."""
    return UniqueConstraint("org_id", "id", name=f"uq_{table}_org_id_id")


def tenant_fk(column: str, target: str, *, ondelete: str) -> ForeignKeyConstraint:
    """`(column, org_id) REFERENCES target (id, org_id)`: the referenced row must be in the same
    organisation. `SET NULL` clears only `column` (PostgreSQL 15+), never the row's `org_id`.
    The name stays the naming convention's `fk_<table>_<column>_<target>`."""
    action = f"SET NULL ({column})" if ondelete.upper() == "SET NULL" else ondelete.upper()
    return ForeignKeyConstraint([column, "org_id"], [f"{target}.id", f"{target}.org_id"], ondelete=action)
