"""Organisations (the tenants), people, their memberships, and the server-side sessions.

Row-level security (migration 0002):
- organization: a row is visible only while `app.org_id` is its id.
- memberships, auth_sessions, refresh_tokens: the standard tenant policy on org_id.
- users: users span organisations, so they carry no org_id; a user row is visible only to the
  organisations it is a member of (or to itself through `app.user_id`, for sign-in and reset), and
  only the user itself (`app.user_id`) inserts or updates it (migration 0005). Admin actions on an
  account go through the SECURITY DEFINER function `identity_admin_set_password`.
- invitations: the inviting organisation's tenant policy, plus the invitee's own (`app.user_id`).
- password_reset_tokens: visible only through `app.user_id`.
Pre-authentication look-ups (login by email) go through SECURITY DEFINER functions, so the
application role never needs to bypass RLS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key
from spotless.domain.identity.permissions import ROLES

_ROLE_LIST = ", ".join(f"'{r}'" for r in ROLES)


class Organization(UUIDv7AuditBase):
    """The tenant itself. Its id is what `app.org_id` holds."""

    __tablename__ = "organization"
    __table_args__ = (
        UniqueConstraint("slug", name="uq_organization_slug"),
        CheckConstraint("slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'", name="slug_format"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint("tax_rate_bps BETWEEN 0 AND 10000", name="tax_rate_range"),
    )

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(35), default="en-CA")
    # {"mon": [{"start": "08:00", "end": "17:00"}], ...} in the organisation's timezone.
    business_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    tax_rate_bps: Mapped[int] = mapped_column(Integer, default=0)
    contact_email: Mapped[str | None] = mapped_column(String(320), default=None)
    contact_phone: Mapped[str | None] = mapped_column(String(40), default=None)
    address: Mapped[str | None] = mapped_column(String(500), default=None)


class User(UUIDv7AuditBase):
    """A person; may belong to several organisations. Email is unique case-insensitively (citext)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="uq_users_email"),)

    email: Mapped[str] = mapped_column(CITEXT())
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Membership(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),
        CheckConstraint(f"role IN ({_ROLE_LIST})", name="role_known"),
        Index("ix_memberships_user_id", "user_id"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The name the organisation knows this member by; the person's own `users.full_name` stays theirs.
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AuthSession(TenantMixin, UUIDv7AuditBase):
    """One sign-in. Access tokens name it (`sid`); revoking it refuses them on the next request."""

    __tablename__ = "auth_sessions"
    __table_args__ = (tenant_key("auth_sessions"), Index("ix_auth_sessions_org_user", "org_id", "user_id"))

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)


class RefreshToken(TenantMixin, UUIDv7AuditBase):
    """Each refresh token is used once; a second use of the same one revokes its session."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        tenant_fk("session_id", "auth_sessions", ondelete="CASCADE"),
        UniqueConstraint("org_id", "token_hash", name="uq_refresh_tokens_org_hash"),
        Index("ix_refresh_tokens_session_id", "session_id"),
    )

    session_id: Mapped[UUID] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class PasswordResetToken(UUIDv7AuditBase):
    """Single-use, short-lived; only its hash is stored. Belongs to a user, not an organisation."""

    __tablename__ = "password_reset_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_password_reset_tokens_token_hash"),
        Index("ix_password_reset_tokens_user_id", "user_id"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # NULL until the email job mints the link at send time (the secret never waits in a queue).
    token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    requested_ip: Mapped[str | None] = mapped_column(String(64), default=None)


INVITATION_STATUSES = ("pending", "accepted", "declined", "revoked", "expired")


class Invitation(TenantMixin, UUIDv7AuditBase):
    """An organisation's offer of a membership to one account; nothing is granted until the person
    accepts it in their own session. `user_id` is the account the email named when invited (a new
    one when `created_account`). Only the token's hash is stored, minted by the delivery job."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(f"role IN ({_ROLE_LIST})", name="role_known"),
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in INVITATION_STATUSES) + ")", name="status_known"),
        Index("ix_invitations_user_id", "user_id"),
        # The target of the invitation email's `deliveries` row (same organisation).
        UniqueConstraint("org_id", "id", name="uq_invitations_org_id_id"),
        Index(
            "uq_invitations_pending_email",
            "org_id",
            "email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    email: Mapped[str] = mapped_column(CITEXT())
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    invited_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_account: Mapped[bool] = mapped_column(Boolean, default=False)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    def effective_status(self, now: datetime | None = None) -> str:
        """A pending invitation past its expiry is expired, whether or not a write has said so yet."""
        if self.status == "pending" and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return self.status
