"""retention: per-organisation retention settings, the erasure register, the organisations' list

- `retention_settings` (tenant table, RLS forced): one row per organisation that chose its own
  retention (days of delivered message bodies, expired exports, job photos); absent = the
  `RETENTION_*` defaults.
- `client_erasures` (tenant table, RLS forced): one row per erased client, `(org_id, client_id)`
  unique, so an erasure happens once and a repeat answers the first one.
- `exports.subject_id`: the client a `client_data` export is about (the exports context's new
  kind: everything held about one client, a ZIP of JSON); one in flight per client.
- `retention_organisations(after, limit)`: a SECURITY DEFINER list of organisation ids for the
  retention job, which runs with no organisation bound, then works inside each one in turn.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

ORGS_FUNCTION = "retention_organisations(uuid, integer)"
_GUID = advanced_alchemy.types.guid.GUID(length=16)
_STAMP = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        sa.Column("org_id", _GUID, nullable=False),
        sa.Column("message_body_days", sa.Integer(), nullable=False),
        sa.Column("export_days", sa.Integer(), nullable=False),
        sa.Column("photo_days", sa.Integer(), nullable=False),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("updated_at", _STAMP, nullable=False),
        sa.CheckConstraint("message_body_days BETWEEN 1 AND 3660", name=op.f("ck_retention_settings_message_days")),
        sa.CheckConstraint("export_days BETWEEN 1 AND 3660", name=op.f("ck_retention_settings_export_days")),
        sa.CheckConstraint("photo_days BETWEEN 1 AND 3660", name=op.f("ck_retention_settings_photo_days")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_retention_settings_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_retention_settings")),
    )
    enable_tenant_rls(op, "retention_settings")

    op.create_table(
        "client_erasures",
        sa.Column("id", _GUID, nullable=False),
        sa.Column("org_id", _GUID, nullable=False),
        sa.Column("client_id", _GUID, nullable=False),
        sa.Column("erased_by", _GUID, nullable=True),
        sa.Column("counts", sa.dialects.postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("updated_at", _STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_client_erasures_org_id_organization"), ondelete="CASCADE"
        ),
        # The client row stays (archived, tombstoned): its invoices and ledger still point at it.
        sa.ForeignKeyConstraint(
            ["client_id", "org_id"],
            ["client.id", "client.org_id"],
            name=op.f("fk_client_erasures_client_id_client"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_erasures")),
        sa.UniqueConstraint("org_id", "client_id", name="uq_client_erasures_org_id_client_id"),
    )
    op.create_index(op.f("ix_client_erasures_org_id"), "client_erasures", ["org_id"], unique=False)
    enable_tenant_rls(op, "client_erasures")
    # The register of erasures is evidence: the app adds to it, never rewrites it.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON client_erasures FROM {APP_ROLE}")

    op.add_column("exports", sa.Column("subject_id", _GUID, nullable=True))
    op.create_foreign_key(
        op.f("fk_exports_subject_id_client"),
        "exports",
        "client",
        ["subject_id", "org_id"],
        ["id", "org_id"],
        ondelete="CASCADE",
    )
    op.drop_constraint(op.f("ck_exports_kind_known"), "exports", type_="check")
    op.create_check_constraint(
        op.f("ck_exports_kind_known"),
        "exports",
        "kind IN ('bookings', 'clients', 'invoices', 'payments', 'taxes', 'client_data')",
    )
    op.drop_constraint(op.f("ck_exports_format_fits_kind"), "exports", type_="check")
    op.create_check_constraint(
        op.f("ck_exports_format_fits_kind"), "exports", "(kind IN ('taxes', 'client_data')) = (format = 'zip')"
    )
    op.create_check_constraint(
        op.f("ck_exports_subject_iff_client_data"), "exports", "(kind = 'client_data') = (subject_id IS NOT NULL)"
    )
    op.drop_index("uq_exports_in_flight", table_name="exports")
    op.create_index(
        "uq_exports_in_flight",
        "exports",
        ["org_id", "kind", "period_from", "period_to", "subject_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )

    op.execute(
        """
        CREATE OR REPLACE FUNCTION retention_organisations(p_after uuid, p_limit integer)
        RETURNS TABLE (org_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT o.id FROM organization o
            WHERE o.id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
            ORDER BY o.id
            LIMIT LEAST(GREATEST(p_limit, 1), 1000)
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [ORGS_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {ORGS_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ORGS_FUNCTION}")
    op.execute("DELETE FROM exports WHERE kind = 'client_data'")
    op.drop_index("uq_exports_in_flight", table_name="exports")
    op.create_index(
        "uq_exports_in_flight",
        "exports",
        ["org_id", "kind", "period_from", "period_to"],
        unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_constraint(op.f("ck_exports_subject_iff_client_data"), "exports", type_="check")
    op.drop_constraint(op.f("ck_exports_format_fits_kind"), "exports", type_="check")
    op.create_check_constraint(op.f("ck_exports_format_fits_kind"), "exports", "(kind = 'taxes') = (format = 'zip')")
    op.drop_constraint(op.f("ck_exports_kind_known"), "exports", type_="check")
    op.create_check_constraint(
        op.f("ck_exports_kind_known"), "exports", "kind IN ('bookings', 'clients', 'invoices', 'payments', 'taxes')"
    )
    op.drop_constraint(op.f("fk_exports_subject_id_client"), "exports", type_="foreignkey")
    op.drop_column("exports", "subject_id")
    op.drop_table("client_erasures")
    op.drop_table("retention_settings")
