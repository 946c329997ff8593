"""Connections to outside services and the OAuth states of connections being made."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_key

PROVIDERS = ("google", "quickbooks")
STATUSES = ("active", "needs_reconnect", "disconnected")


class IntegrationConnection(UUIDv7AuditBase, TenantMixin):
    """One grant: the organisation's (owner_user_id NULL) or a member's own (a cleaner's calendar).
    Tokens are sealed (spotless.lib.sealed) with aad f"{org_id}:{id}:access|refresh"."""

    __tablename__ = "integration_connections"
    __table_args__ = (
        tenant_key("integration_connections"),
        ForeignKeyConstraint(
            ["org_id", "owner_user_id"],
            ["memberships.org_id", "memberships.user_id"],
            name="fk_integration_connections_owner_membership",
            ondelete="CASCADE",
        ),
        CheckConstraint("provider IN ('google', 'quickbooks')", name="provider_known"),
        CheckConstraint("status IN ('active', 'needs_reconnect', 'disconnected')", name="status_known"),
        # A disconnected row keeps no token.
        CheckConstraint(
            "status <> 'disconnected' OR (access_token_sealed IS NULL AND refresh_token_sealed IS NULL)",
            name="disconnected_has_no_tokens",
        ),
        # One live connection per (org, provider, owner); NULL owner = the organisation's own.
        Index(
            "uq_integration_connections_live",
            "org_id",
            "provider",
            text("coalesce(owner_user_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
            postgresql_where=text("status <> 'disconnected'"),
        ),
        Index("ix_integration_connections_due", "provider", "next_sync_at", postgresql_where=text("status = 'active'")),
    )

    provider: Mapped[str] = mapped_column(String(16))
    owner_user_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    access_token_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    scopes: Mapped[str | None] = mapped_column(Text, default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped when the grant fails: the office notice's send key, so one incident sends one notice.
    incident: Mapped[int] = mapped_column(Integer, default=0)


class OAuthState(UUIDv7AuditBase, TenantMixin):
    """A connection being made: only the state's sha256 is stored; single use, bound to the user."""

    __tablename__ = "oauth_states"
    __table_args__ = (
        tenant_key("oauth_states"),
        ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["memberships.org_id", "memberships.user_id"],
            name="fk_oauth_states_user_membership",
            ondelete="CASCADE",
        ),
        CheckConstraint("provider IN ('google', 'quickbooks')", name="provider_known"),
        Index("uq_oauth_states_state_hash", "state_hash", unique=True),
    )

    user_id: Mapped[UUID] = mapped_column(GUID())
    provider: Mapped[str] = mapped_column(String(16))
    # Whose connection it makes: NULL = the organisation's, else the user's own (cleaner calendar).
    owner_user_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    state_hash: Mapped[str] = mapped_column(String(64))
    code_verifier_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
