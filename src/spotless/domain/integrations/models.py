"""An organisation's connections to outside services (Google Calendar, QuickBooks Online) and the
OAuth states of connects in progress.

Tokens are kept only sealed (spotless.lib.sealed, bound to their row); an OAuth state only as its
SHA-256. A connection is `active`, `needs_reconnect` (the grant was revoked or expired: no sync
runs until someone connects again, which revives the same row) or `disconnected` (tokens wiped).
One live (not disconnected) connection per organisation, provider and owner: `owner_user_id` is a
member's own Google calendar, NULL the organisation's."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_key

PROVIDERS = ("google", "quickbooks")
STATUSES = ("active", "needs_reconnect", "disconnected")


class IntegrationConnection(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "integration_connections"
    __table_args__ = (
        tenant_key("integration_connections"),
        # A member's own calendar: that person must be a member of this organisation.
        ForeignKeyConstraint(
            ["owner_user_id", "org_id"], ["memberships.user_id", "memberships.org_id"], ondelete="CASCADE"
        ),
        CheckConstraint("provider IN ('google', 'quickbooks')", name="provider_known"),
        CheckConstraint("status IN ('active', 'needs_reconnect', 'disconnected')", name="status_known"),
        # QuickBooks connects a company, never a person.
        CheckConstraint("provider = 'google' OR owner_user_id IS NULL", name="quickbooks_is_organisation_wide"),
        # Disconnected means no tokens kept; a live connection has its refresh token.
        CheckConstraint(
            "(status = 'disconnected') = (refresh_token_sealed IS NULL AND access_token_sealed IS NULL)",
            name="tokens_match_status",
        ),
        CheckConstraint("error_count >= 0", name="error_count_non_negative"),
        Index(
            "uq_integration_connections_live",
            "org_id",
            "provider",
            text("coalesce(owner_user_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
            postgresql_where=text("status <> 'disconnected'"),
        ),
        # The pollers' claim: live ones of a provider by next due time.
        Index("ix_integration_connections_due", "provider", "next_sync_at", postgresql_where=text("status = 'active'")),
    )

    provider: Mapped[str] = mapped_column(String(16))
    # A member's own calendar (users.id; their membership is checked when connecting); NULL: the organisation's.
    owner_user_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    # Google: the account's email; QuickBooks: the company's realmId.
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # When `status` last changed: a needs-reconnect incident is told once, keyed on it.
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    connected_by_user_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    access_token_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    scopes: Mapped[str | None] = mapped_column(Text, default=None)
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_count: Mapped[int] = mapped_column(Integer, default=0)


class OAuthState(UUIDv7AuditBase, TenantMixin):
    """A connect in progress: who started it, for which owner, and (for PKCE) its code verifier.
    Used once, by the same signed-in user, before `expires_at`."""

    __tablename__ = "oauth_states"
    __table_args__ = (
        UniqueConstraint("state_hash", name="uq_oauth_states_state_hash"),
        ForeignKeyConstraint(["user_id", "org_id"], ["memberships.user_id", "memberships.org_id"], ondelete="CASCADE"),
        CheckConstraint("provider IN ('google', 'quickbooks')", name="provider_known"),
        Index("ix_oauth_states_expires_at", "expires_at"),
    )

    user_id: Mapped[UUID] = mapped_column(GUID())
    provider: Mapped[str] = mapped_column(String(16))
    # The connection being made is this user's own (Google) or the organisation's.
    for_user: Mapped[bool] = mapped_column(default=False)
    state_hash: Mapped[str] = mapped_column(String(64))
    code_verifier_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
