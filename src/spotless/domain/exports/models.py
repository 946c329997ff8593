"""The exports context's table (migration 0019): one row per requested export, its progress and
its file. The row is the export's whole state: a worker claims it under a lease, a crashed
worker's claim lapses and the next delivery restarts it, a dead export stays `failed` with its
reason until someone replays it, and a finished one is downloadable until `expires_at`."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key

# `client_data`: everything held about one client (`subject_id`), a ZIP of JSON (retention context).
EXPORT_KINDS = ("bookings", "clients", "invoices", "payments", "taxes", "client_data")
EXPORT_FORMATS = ("csv", "zip")
EXPORT_STATUSES = ("queued", "running", "succeeded", "failed", "expired")
PERIOD_RULE = "(period_from IS NULL) = (period_to IS NULL) AND (period_from IS NULL OR period_from <= period_to)"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Export(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "exports"
    __table_args__ = (
        tenant_key("exports"),
        tenant_fk("subject_id", "client", ondelete="CASCADE"),
        CheckConstraint(_in("kind", EXPORT_KINDS), name="kind_known"),
        CheckConstraint(_in("format", EXPORT_FORMATS), name="format_known"),
        CheckConstraint(_in("status", EXPORT_STATUSES), name="status_known"),
        # The tax export is a ZIP of CSVs, a client's data a ZIP of JSON; every other kind is one CSV.
        CheckConstraint("(kind IN ('taxes', 'client_data')) = (format = 'zip')", name="format_fits_kind"),
        CheckConstraint("(kind = 'client_data') = (subject_id IS NOT NULL)", name="subject_iff_client_data"),
        CheckConstraint(PERIOD_RULE, name="period_order"),
        CheckConstraint(
            "progress_done >= 0 AND (progress_total IS NULL OR progress_done <= progress_total)",
            name="progress_bounded",
        ),
        CheckConstraint(
            "status <> 'succeeded' OR (object_key IS NOT NULL AND expires_at IS NOT NULL)",
            name="succeeded_has_file",
        ),
        CheckConstraint("(status = 'running') = (lease_expires_at IS NOT NULL)", name="lease_iff_running"),
        CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failed_has_reason"),
        Index("ix_exports_org_id_created_at_id", "org_id", "created_at", "id"),
        # One export of a kind and period in flight at a time: a second request joins it.
        Index(
            "uq_exports_in_flight",
            "org_id",
            "kind",
            "period_from",
            "period_to",
            "subject_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        # The sweep's look-ups: finished exports by expiry, running ones by lease.
        Index(
            "ix_exports_sweep",
            "status",
            "expires_at",
            postgresql_where=text("status IN ('succeeded', 'expired', 'running', 'queued')"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    # Inclusive local dates; none for a client list of everyone.
    period_from: Mapped[date | None] = mapped_column(Date, default=None)
    period_to: Mapped[date | None] = mapped_column(Date, default=None)
    # The client a `client_data` export is about (none for the other kinds).
    subject_id: Mapped[UUID | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    progress_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(Text, default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    object_key: Mapped[str | None] = mapped_column(Text, default=None)
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[UUID | None] = mapped_column(GUID(), default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
