"""exports: asynchronous exports (CSV ledgers, the tax ZIP) with progress, lease and expiry

- `exports` (tenant table, RLS forced): one row per requested export; its status, progress, the
  worker's lease, the stored file and when it expires.
- `exports_due(now, stale_before, limit)`: a SECURITY DEFINER look-up for the periodic sweep,
  which runs with no organisation bound: it returns only (org_id, id, action) of exports that
  must expire, whose file must still be deleted, or whose worker died (lease lapsed, or queued
  and never picked up). The sweep then acts on each inside that export's own organisation.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DUE_FUNCTION = "exports_due(timestamp with time zone, timestamp with time zone, integer)"


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("progress_done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('bookings', 'clients', 'invoices', 'payments', 'taxes')", name=op.f("ck_exports_kind_known")
        ),
        sa.CheckConstraint("format IN ('csv', 'zip')", name=op.f("ck_exports_format_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'expired')", name=op.f("ck_exports_status_known")
        ),
        sa.CheckConstraint("(kind = 'taxes') = (format = 'zip')", name=op.f("ck_exports_format_fits_kind")),
        sa.CheckConstraint(
            "(period_from IS NULL) = (period_to IS NULL) AND (period_from IS NULL OR period_from <= period_to)",
            name=op.f("ck_exports_period_order"),
        ),
        sa.CheckConstraint(
            "progress_done >= 0 AND (progress_total IS NULL OR progress_done <= progress_total)",
            name=op.f("ck_exports_progress_bounded"),
        ),
        sa.CheckConstraint(
            "status <> 'succeeded' OR (object_key IS NOT NULL AND expires_at IS NOT NULL)",
            name=op.f("ck_exports_succeeded_has_file"),
        ),
        sa.CheckConstraint(
            "(status = 'running') = (lease_expires_at IS NOT NULL)", name=op.f("ck_exports_lease_iff_running")
        ),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL", name=op.f("ck_exports_failed_has_reason")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_exports_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sa.UniqueConstraint("org_id", "id", name="uq_exports_org_id_id"),
    )
    op.create_index(op.f("ix_exports_org_id"), "exports", ["org_id"], unique=False)
    op.create_index("ix_exports_org_id_created_at_id", "exports", ["org_id", "created_at", "id"], unique=False)
    op.create_index(
        "uq_exports_in_flight",
        "exports",
        ["org_id", "kind", "period_from", "period_to"],
        unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_exports_sweep",
        "exports",
        ["status", "expires_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('succeeded', 'expired', 'running', 'queued')"),
    )
    enable_tenant_rls(op, "exports")

    op.execute(f"GRANT SELECT ON exports TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON exports TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION exports_due(p_now timestamptz, p_stale_before timestamptz, p_limit integer)
        RETURNS TABLE (org_id uuid, export_id uuid, action text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            (SELECT e.org_id, e.id, 'expire'::text FROM exports e
             WHERE e.status = 'succeeded' AND e.expires_at <= p_now ORDER BY e.expires_at LIMIT p_limit)
            UNION ALL
            (SELECT e.org_id, e.id, 'delete'::text FROM exports e
             WHERE e.status = 'expired' AND e.object_key IS NOT NULL LIMIT p_limit)
            UNION ALL
            (SELECT e.org_id, e.id, 'resume'::text FROM exports e
             WHERE (e.status = 'running' AND e.lease_expires_at <= p_now)
                OR (e.status = 'queued' AND e.updated_at <= p_stale_before)
             LIMIT p_limit)
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [DUE_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {DUE_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DUE_FUNCTION}")
    op.drop_index("ix_exports_sweep", table_name="exports")
    op.drop_index("uq_exports_in_flight", table_name="exports")
    op.drop_index("ix_exports_org_id_created_at_id", table_name="exports")
    op.drop_index(op.f("ix_exports_org_id"), table_name="exports")
    op.drop_table("exports")
