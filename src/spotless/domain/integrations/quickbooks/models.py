"""What the QuickBooks Online sync keeps (migration 0029).

`qbo_links`: one row per our record (a client, an invoice, a payment, a refund) and QuickBooks
company (realm): the QuickBooks Id and SyncToken it has there, the digest of what we last pushed,
where it stands (`state`) and why it failed. Once linked, a record is matched by that Id only,
never by name. `generation` goes up whenever QuickBooks refused a create for good (a duplicate
name or number): the create's `requestid` is derived from it, so a retried call replays the
first answer while a new attempt after a fix is a new create.

`qbo_sync_cursors`: per organisation and realm, up to when Change Data Capture has been read."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk

KINDS = ("customer", "invoice", "payment", "refund")
# pending: to push; synced: QuickBooks has what we have; differs: it has something else (a payment
# recorded there, another amount); failed: QuickBooks refused it (last_error says why);
# needs_choice: a customer whose name exists there (6240): the office links or renames.
STATES = ("pending", "synced", "differs", "failed", "needs_choice")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class QboLink(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "qbo_links"
    __table_args__ = (
        tenant_fk("connection_id", "integration_connections", ondelete="CASCADE"),
        UniqueConstraint("org_id", "realm_id", "kind", "our_id", name="uq_qbo_links_ours"),
        Index(
            "uq_qbo_links_theirs",
            "org_id",
            "realm_id",
            "kind",
            "qbo_id",
            unique=True,
            postgresql_where=text("qbo_id IS NOT NULL"),
        ),
        Index("ix_qbo_links_org_id_state_id", "org_id", "state", "id"),
        CheckConstraint(_in("kind", KINDS), name="kind_known"),
        CheckConstraint(_in("state", STATES), name="state_known"),
        CheckConstraint("generation >= 0", name="generation_non_negative"),
    )

    connection_id: Mapped[UUID] = mapped_column()
    realm_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    our_id: Mapped[UUID] = mapped_column()
    qbo_id: Mapped[str | None] = mapped_column(String(64), default=None)
    sync_token: Mapped[str | None] = mapped_column(String(32), default=None)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # A customer renamed by the office's choice (6240): the DisplayName pushed instead of the client's name.
    display_name: Mapped[str | None] = mapped_column(Text, default=None)
    pushed_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    pushed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(16), default=None)
    # 6240: the existing QuickBooks customer the office may link to.
    conflict_qbo_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # What we last read of it in QuickBooks (amounts in cents) and how it differs from ours.
    remote: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    differences: Mapped[list[Any] | None] = mapped_column(JSONB, default=None)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class QboSyncCursor(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "qbo_sync_cursors"
    __table_args__ = (
        tenant_fk("connection_id", "integration_connections", ondelete="CASCADE"),
        UniqueConstraint("org_id", "realm_id", name="uq_qbo_sync_cursors_org_id_realm_id"),
    )

    connection_id: Mapped[UUID] = mapped_column()
    realm_id: Mapped[str] = mapped_column(String(64))
    # Our changes pushed through this instant; QuickBooks' changes read (CDC) through this one.
    pushed_through: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    pulled_through: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
