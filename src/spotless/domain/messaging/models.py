"""Messaging's tables (migration 0016).

- `deliveries`: one row per (organisation, kind, subject, send key, recipient, channel): the
  request, its outcome and the message log. A repeated request or a redelivered job finds it.
- `message_suppressions`: addresses refused for good (SMTP 5xx) in one organisation.
- `message_templates`: an organisation's wording of a kind (rendered in a sandbox).
- `message_preferences`: a client's or worker's channel per kind.
- `sms_consents`: a client's or worker's opt-in to texts on one phone number.
- `sms_opt_outs` (system, no org_id): numbers that texted STOP to our one sending number. The
  number is shared by every organisation, so the carrier blocks it for all of them anyway.
- `messaging_settings`: per organisation reply-to, logo and quiet hours.

Recipients are (kind, id); the generated `client_id` / `worker_id` / `user_id` columns carry the
composite references, so the database refuses a recipient of another organisation.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.mixins import AuditColumns
from advanced_alchemy.types import GUID
from sqlalchemy import (
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase

DELIVERY_STATUSES = ("queued", "sent", "logged", "delivered", "skipped", "suppressed", "refused", "bounced", "failed")
# Statuses after which a delivery is never attempted again.
FINAL_STATUSES = frozenset(DELIVERY_STATUSES) - {"queued"}
CHANNELS = ("email", "sms")
PREFERENCES = ("email", "sms", "none")
RECIPIENT_KINDS = ("client", "worker", "user")
# A delivery may also go to an invitation's email (identity.invitation): not a member yet.
DELIVERY_RECIPIENT_KINDS = (*RECIPIENT_KINDS, "invitee")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _recipient_column(kind: str) -> Mapped[UUID | None]:
    return mapped_column(
        GUID(), Computed(f"CASE WHEN recipient_kind = '{kind}' THEN recipient_id END", persisted=True), nullable=True
    )


class Delivery(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "org_id",
            "kind",
            "subject_type",
            "subject_id",
            "send_key",
            "recipient_kind",
            "recipient_id",
            "channel",
            name="uq_deliveries_request",
        ),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
        CheckConstraint(_in("recipient_kind", DELIVERY_RECIPIENT_KINDS), name="recipient_kind_known"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        ForeignKeyConstraint(["client_id", "org_id"], ["client.id", "client.org_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["worker_id", "org_id"], ["worker.id", "worker.org_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["org_id", "user_id"], ["memberships.org_id", "memberships.user_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["org_id", "invitation_id"], ["invitations.org_id", "invitations.id"], ondelete="CASCADE"),
        Index("ix_deliveries_subject", "org_id", "subject_type", "subject_id"),
        Index("ix_deliveries_client", "org_id", "client_id", "id"),
    )

    kind: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[UUID] = mapped_column(GUID())
    send_key: Mapped[str] = mapped_column(String(200))
    recipient_kind: Mapped[str] = mapped_column(String(10))
    recipient_id: Mapped[UUID] = mapped_column(GUID())
    client_id: Mapped[UUID | None] = _recipient_column("client")
    worker_id: Mapped[UUID | None] = _recipient_column("worker")
    user_id: Mapped[UUID | None] = _recipient_column("user")
    invitation_id: Mapped[UUID | None] = _recipient_column("invitee")
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="queued", server_default="queued")
    # Ids and plain facts the kind's context builder needs (never secrets).
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Where it went (the address or number at send time) and what it said (subject or first words).
    address: Mapped[str | None] = mapped_column(Text, default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    message_id: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # When the provider reported it `delivered` or `bounced` (Twilio's status callback, SendGrid's
    # event webhook), after it was sent (migration 0025).
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Why it was refused, skipped or failed, in words (never a credential or a body).
    error: Mapped[str | None] = mapped_column(Text, default=None)


class Suppression(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "message_suppressions"
    __table_args__ = (
        UniqueConstraint("org_id", "channel", "address", name="uq_message_suppressions_address"),
        CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
    )

    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(CITEXT())
    reason: Mapped[str] = mapped_column(Text)
    delivery_id: Mapped[UUID | None] = mapped_column(GUID(), default=None)


class TemplateOverride(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("org_id", "kind", name="uq_message_templates_kind"),)

    kind: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    text_body: Mapped[str | None] = mapped_column(Text, default=None)
    html_body: Mapped[str | None] = mapped_column(Text, default=None)
    sms_body: Mapped[str | None] = mapped_column(Text, default=None)


class Preference(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "message_preferences"
    __table_args__ = (
        UniqueConstraint("org_id", "recipient_kind", "recipient_id", "kind", name="uq_message_preferences_kind"),
        CheckConstraint(_in("channel", PREFERENCES), name="channel_known"),
        CheckConstraint(_in("recipient_kind", RECIPIENT_KINDS), name="recipient_kind_known"),
        ForeignKeyConstraint(["client_id", "org_id"], ["client.id", "client.org_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["worker_id", "org_id"], ["worker.id", "worker.org_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["org_id", "user_id"], ["memberships.org_id", "memberships.user_id"], ondelete="CASCADE"),
    )

    recipient_kind: Mapped[str] = mapped_column(String(10))
    recipient_id: Mapped[UUID] = mapped_column(GUID())
    client_id: Mapped[UUID | None] = _recipient_column("client")
    worker_id: Mapped[UUID | None] = _recipient_column("worker")
    # A member's own choice (an office digest they unsubscribed from).
    user_id: Mapped[UUID | None] = _recipient_column("user")
    kind: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(8))


class SmsConsent(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "sms_consents"
    __table_args__ = (
        UniqueConstraint("org_id", "recipient_kind", "recipient_id", "phone", name="uq_sms_consents_phone"),
        CheckConstraint("recipient_kind IN ('client', 'worker')", name="recipient_kind_known"),
        ForeignKeyConstraint(["client_id", "org_id"], ["client.id", "client.org_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["worker_id", "org_id"], ["worker.id", "worker.org_id"], ondelete="CASCADE"),
    )

    recipient_kind: Mapped[str] = mapped_column(String(10))
    recipient_id: Mapped[UUID] = mapped_column(GUID())
    client_id: Mapped[UUID | None] = _recipient_column("client")
    worker_id: Mapped[UUID | None] = _recipient_column("worker")
    phone: Mapped[str] = mapped_column(String(40))
    # Who recorded it and how ("office", "portal", "START"): the proof of consent.
    source: Mapped[str] = mapped_column(String(40))


class SmsOptOut(DefaultBase, AuditColumns):
    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(40), primary_key=True)


class MessagingSettings(DefaultBase, AuditColumns):
    __tablename__ = "messaging_settings"

    org_id: Mapped[UUID] = mapped_column(GUID(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True)
    reply_to: Mapped[str | None] = mapped_column(String(320), default=None)
    logo_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # No texts between these local times (start > end spans midnight); both NULL: no quiet hours.
    # Without a row the default quiet hours apply (21:00 to 08:00, see org_settings).
    quiet_start: Mapped[time | None] = mapped_column(Time(), default=None)
    quiet_end: Mapped[time | None] = mapped_column(Time(), default=None)
