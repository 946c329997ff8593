"""Tables of migration 0021: checklist templates per service, a job's checklist, job photos and
the queue of storage objects to delete (retried until storage says they are gone)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key

PHOTO_KINDS = ("before", "after")
PHOTO_STATUSES = ("pending", "confirmed")


class ChecklistTemplateItem(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "checklist_template_item"
    __table_args__ = (
        tenant_key("checklist_template_item"),
        tenant_fk("service_id", "service", ondelete="CASCADE"),
        UniqueConstraint("org_id", "service_id", "position", name="uq_checklist_template_item_position"),
        CheckConstraint("position >= 0", name="position_non_negative"),
        CheckConstraint("length(label) BETWEEN 1 AND 200", name="label_length"),
    )

    service_id: Mapped[UUID] = mapped_column(GUID)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)


class JobChecklistItem(UUIDv7AuditBase, TenantMixin):
    """A copy of the template's item made when the job's checklist is first opened: later edits of
    the template do not rewrite what a cleaner was asked to do."""

    __tablename__ = "job_checklist_item"
    __table_args__ = (
        tenant_key("job_checklist_item"),
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("done_by_worker_id", "worker", ondelete="SET NULL"),
        UniqueConstraint("org_id", "booking_id", "position", name="uq_job_checklist_item_position"),
        CheckConstraint("(done_at IS NULL) = (done_by_user_id IS NULL)", name="done_has_author"),
    )

    booking_id: Mapped[UUID] = mapped_column(GUID)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    done_by_user_id: Mapped[UUID | None] = mapped_column(GUID, default=None)
    done_by_worker_id: Mapped[UUID | None] = mapped_column(GUID, default=None)


class JobPhoto(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "job_photo"
    __table_args__ = (
        tenant_key("job_photo"),
        tenant_fk("booking_id", "booking", ondelete="CASCADE"),
        tenant_fk("worker_id", "worker", ondelete="SET NULL"),
        CheckConstraint("kind IN ('before', 'after')", name="kind_known"),
        CheckConstraint("status IN ('pending', 'confirmed')", name="status_known"),
        CheckConstraint(
            "status <> 'confirmed' OR (object_key IS NOT NULL AND thumb_key IS NOT NULL AND size_bytes IS NOT NULL"
            " AND content_type IS NOT NULL AND confirmed_at IS NOT NULL)",
            name="confirmed_has_file",
        ),
        Index("ix_job_photo_org_id_booking_id", "org_id", "booking_id", "created_at"),
        Index("ix_job_photo_pending", "upload_expires_at", postgresql_where=text("status = 'pending'")),
        Index("ix_job_photo_confirmed", "confirmed_at", postgresql_where=text("status = 'confirmed'")),
    )

    booking_id: Mapped[UUID] = mapped_column(GUID)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    # Where the app's presigned POST writes; deleted once the cleaned copy is stored.
    upload_key: Mapped[str | None] = mapped_column(Text)
    upload_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What the app said it would send (signed into the form); the sniffed type must match it.
    declared_type: Mapped[str] = mapped_column(String(100))
    object_key: Mapped[str | None] = mapped_column(Text, default=None)
    thumb_key: Mapped[str | None] = mapped_column(Text, default=None)
    content_type: Mapped[str | None] = mapped_column(String(32), default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    uploaded_by_user_id: Mapped[UUID] = mapped_column(GUID)
    worker_id: Mapped[UUID | None] = mapped_column(GUID, default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class StorageDeletion(UUIDv7AuditBase):
    """An object to delete. Rows come from the `job_photo` delete trigger (any deletion of a photo
    row, cascades included, queues its objects) and from confirmations (the raw upload). No FK to
    the organisation: a deleted organisation's objects must still be removed."""

    __tablename__ = "storage_deletion"
    org_id: Mapped[UUID] = mapped_column(GUID, index=True)  # type: ignore[assignment]
    __table_args__ = (
        UniqueConstraint("org_id", "object_key", name="uq_storage_deletion_key"),
        Index("ix_storage_deletion_due", "not_before"),
    )

    object_key: Mapped[str] = mapped_column(Text)
    # A raw upload's form stays usable until its expiry: deleting before that could be undone.
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
