"""Outgoing webhooks' tables (migration 0020): endpoints, their secrets, messages and attempts.

Every table is a tenant table under row-level security; references are composite `(x_id, org_id)`.
A message is one event for one endpoint (unique on the event id), keeps the exact body it sends
(the signature covers those bytes, and a retry sends the same), and is claimed for an attempt by
a lease token: whoever does not hold the current token does not send."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key

MESSAGE_STATUSES = ("pending", "delivered", "failed")
DISABLED_REASONS = ("manual", "gone", "failing")


class WebhookEndpoint(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        tenant_key("webhook_endpoints"),
        CheckConstraint(
            "disabled_reason IS NULL OR disabled_reason IN ('manual', 'gone', 'failing')",
            name="disabled_reason_known",
        ),
        CheckConstraint("enabled OR disabled_reason IS NOT NULL", name="disabled_has_reason"),
        CheckConstraint("cardinality(event_types) >= 1", name="event_types_not_empty"),
    )

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The first failure since the last success (null while it delivers).
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class WebhookSecret(UUIDv7AuditBase, TenantMixin):
    """The current secret has no `expires_at`; a rotated one signs until it passes."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (
        tenant_fk("endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        Index(
            "uq_webhook_secrets_current",
            "endpoint_id",
            unique=True,
            postgresql_where=text("expires_at IS NULL"),
        ),
    )

    endpoint_id: Mapped[UUID] = mapped_column(index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class WebhookMessage(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "webhook_messages"
    __table_args__ = (
        tenant_key("webhook_messages"),
        tenant_fk("endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        UniqueConstraint("org_id", "endpoint_id", "event_id", name="uq_webhook_messages_event"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_webhook_messages_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_messages_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    endpoint_id: Mapped[UUID] = mapped_column()
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    lease_token: Mapped[UUID | None] = mapped_column(default=None)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class WebhookAttempt(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        tenant_fk("message_id", "webhook_messages", ondelete="CASCADE"),
        Index("ix_webhook_attempts_message", "message_id", "attempt"),
    )

    message_id: Mapped[UUID] = mapped_column()
    endpoint_id: Mapped[UUID] = mapped_column()
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    latency_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
