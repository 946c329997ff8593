"""What the organisation chose about its notifications (migration 0017).

- `notification_settings`: one row per organisation (defaults when absent): reminders on or off,
  and the local time cleaners get tomorrow's jobs.
- `notifications_digest_settings`: the operations guides' digests, one row per (organisation,
  `digest_key`): enabled, `schedule` (daily / weekly / monthly) and `recipients` (user ids of the
  organisation; empty means its owners and admins). Once per period is the deliveries table's
  unique key (send key = the period key), so no separate digest state is kept."""

from __future__ import annotations

from datetime import time
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.mixins import AuditColumns
from advanced_alchemy.types import GUID
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Time, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_key

DIGEST_KEY_PATTERN = "^[a-z][a-z0-9_-]{0,39}$"


class NotificationSettings(DefaultBase, AuditColumns):
    __tablename__ = "notification_settings"

    org_id: Mapped[UUID] = mapped_column(GUID(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True)
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    agenda_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    agenda_at: Mapped[time] = mapped_column(Time(), default=time(18, 0), server_default=text("'18:00'"))


class DigestSetting(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "notifications_digest_settings"
    __table_args__ = (
        tenant_key("notifications_digest_settings"),
        UniqueConstraint("org_id", "digest_key", name="uq_notifications_digest_settings_org_id_digest_key"),
        CheckConstraint("schedule IN ('daily', 'weekly', 'monthly')", name="schedule_known"),
        CheckConstraint(f"digest_key ~ '{DIGEST_KEY_PATTERN}'", name="digest_key_format"),
        CheckConstraint("cardinality(recipients) <= 50", name="recipients_bounded"),
    )

    digest_key: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    schedule: Mapped[str] = mapped_column(String(16))
    recipients: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid()), default=list, server_default=text("'{}'"))
