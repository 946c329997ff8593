"""scheduling: bookings, worker assignments (no double booking), series, time entries, conflicts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DUE_FUNCTION = "scheduling_due_series(date, integer)"
TENANT_TABLES = (
    "scheduling_settings", "booking_series", "booking", "booking_assignment", "time_entry", "series_conflict",
)


def _audit_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"], ["organization.id"], name=op.f(f"fk_{table}_org_id_organization"), ondelete="CASCADE"
    )


def upgrade() -> None:
    guid = advanced_alchemy.types.guid.GUID(length=16)

    op.create_table(
        "scheduling_settings",
        *_audit_columns(),
        sa.Column("travel_buffer_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("slot_step_minutes", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.CheckConstraint("travel_buffer_minutes BETWEEN 0 AND 240", name=op.f("ck_scheduling_settings_travel_buffer_range")),
        sa.CheckConstraint("slot_step_minutes BETWEEN 5 AND 240", name=op.f("ck_scheduling_settings_slot_step_range")),
        _tenant_fk("scheduling_settings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduling_settings")),
        sa.UniqueConstraint("org_id", name="uq_scheduling_settings_org_id"),
    )
    op.create_index(op.f("ix_scheduling_settings_org_id"), "scheduling_settings", ["org_id"], unique=False)

    op.create_table(
        "booking_series",
        *_audit_columns(),
        sa.Column("client_id", guid, nullable=False),
        sa.Column("address_id", guid, nullable=False),
        sa.Column("service_id", guid, nullable=False),
        sa.Column("team_id", guid, nullable=True),
        sa.Column("worker_ids", postgresql.ARRAY(guid), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("interval", sa.SmallInteger(), nullable=False),
        sa.Column("day_of_month", sa.SmallInteger(), nullable=True),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("until_date", sa.Date(), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("addon_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("materialised_until", sa.Date(), nullable=True),
        sa.Column("parent_series_id", guid, nullable=True),
        sa.Column("created_by", guid, nullable=True),
        sa.CheckConstraint("frequency IN ('weekly', 'monthly')", name=op.f("ck_booking_series_frequency_known")),
        sa.CheckConstraint("interval BETWEEN 1 AND 52", name=op.f("ck_booking_series_interval_range")),
        sa.CheckConstraint(
            "day_of_month IS NULL OR day_of_month BETWEEN 1 AND 31", name=op.f("ck_booking_series_day_of_month_range")
        ),
        sa.CheckConstraint(
            "until_date IS NULL OR until_date >= anchor_date", name=op.f("ck_booking_series_until_after_anchor")
        ),
        sa.CheckConstraint("status IN ('active', 'ended', 'cancelled')", name=op.f("ck_booking_series_status_known")),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], name=op.f("fk_booking_series_client_id_client"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["address_id"], ["client_address.id"], name=op.f("fk_booking_series_address_id_client_address"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"], name=op.f("fk_booking_series_service_id_service"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_booking_series_team_id_team"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["parent_series_id"], ["booking_series.id"], name=op.f("fk_booking_series_parent_series_id_booking_series"),
            ondelete="SET NULL",
        ),
        _tenant_fk("booking_series"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
    )
    op.create_index(op.f("ix_booking_series_org_id"), "booking_series", ["org_id"], unique=False)
    op.create_index(op.f("ix_booking_series_client_id"), "booking_series", ["client_id"], unique=False)
    op.create_index(
        "ix_booking_series_due", "booking_series", ["materialised_until"], unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )

    op.create_table(
        "booking",
        *_audit_columns(),
        sa.Column("client_id", guid, nullable=False),
        sa.Column("address_id", guid, nullable=False),
        sa.Column("service_id", guid, nullable=False),
        sa.Column("team_id", guid, nullable=True),
        sa.Column("series_id", guid, nullable=True),
        sa.Column("occurrence_date", sa.Date(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("price", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("estimated_minutes", sa.Integer(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("addon_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("created_by", guid, nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_booking_ends_after_starts")),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'in_progress', 'completed', 'cancelled', 'no_show')",
            name=op.f("ck_booking_status_known"),
        ),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_booking_total_not_negative")),
        sa.CheckConstraint(
            "(series_id IS NULL) = (occurrence_date IS NULL)", name=op.f("ck_booking_occurrence_with_series")
        ),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], name=op.f("fk_booking_client_id_client"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["address_id"], ["client_address.id"], name=op.f("fk_booking_address_id_client_address"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"], name=op.f("fk_booking_service_id_service"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_booking_team_id_team"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["series_id"], ["booking_series.id"], name=op.f("fk_booking_series_id_booking_series"), ondelete="SET NULL"
        ),
        _tenant_fk("booking"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
        sa.UniqueConstraint("series_id", "occurrence_date", name="uq_booking_series_occurrence"),
    )
    op.create_index(op.f("ix_booking_org_id"), "booking", ["org_id"], unique=False)
    op.create_index("ix_booking_org_id_starts_at", "booking", ["org_id", "starts_at"], unique=False)
    op.create_index(
        "ix_booking_org_id_client_id_starts_at", "booking", ["org_id", "client_id", "starts_at"], unique=False
    )

    op.create_table(
        "booking_assignment",
        *_audit_columns(),
        sa.Column("booking_id", guid, nullable=False),
        sa.Column("worker_id", guid, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("during", postgresql.TSTZRANGE(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overrun_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_booking_assignment_booking_id_booking"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["worker.id"], name=op.f("fk_booking_assignment_worker_id_worker"), ondelete="RESTRICT"
        ),
        _tenant_fk("booking_assignment"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_assignment")),
        sa.UniqueConstraint("booking_id", "worker_id", name="uq_booking_assignment_booking_id_worker_id"),
        # The no-double-booking rule: two active assignments of one worker never overlap (buffer
        # included in `during`). Only active rows are indexed, so history does not slow writes.
        postgresql.ExcludeConstraint(
            (sa.column("org_id"), "="), (sa.column("worker_id"), "="), (sa.column("during"), "&&"),
            using="gist", where=sa.text("active"), name="ex_booking_assignment_no_overlap",
        ),
    )
    op.create_index(op.f("ix_booking_assignment_org_id"), "booking_assignment", ["org_id"], unique=False)
    op.create_index(op.f("ix_booking_assignment_booking_id"), "booking_assignment", ["booking_id"], unique=False)
    op.create_index(
        "ix_booking_assignment_org_id_worker_id_starts_at", "booking_assignment", ["org_id", "worker_id", "starts_at"],
        unique=False,
    )

    op.create_table(
        "time_entry",
        *_audit_columns(),
        sa.Column("booking_id", guid, nullable=False),
        sa.Column("assignment_id", guid, nullable=False),
        sa.Column("worker_id", guid, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_time_entry_ends_after_starts")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_time_entry_booking_id_booking"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["booking_assignment.id"], name=op.f("fk_time_entry_assignment_id_booking_assignment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["worker_id"], ["worker.id"], name=op.f("fk_time_entry_worker_id_worker"), ondelete="RESTRICT"),
        _tenant_fk("time_entry"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_entry")),
    )
    op.create_index(op.f("ix_time_entry_org_id"), "time_entry", ["org_id"], unique=False)
    op.create_index(op.f("ix_time_entry_booking_id"), "time_entry", ["booking_id"], unique=False)
    op.create_index(
        "uq_time_entry_open", "time_entry", ["assignment_id"], unique=True, postgresql_where=sa.text("ended_at IS NULL")
    )

    op.create_table(
        "series_conflict",
        *_audit_columns(),
        sa.Column("series_id", guid, nullable=False),
        sa.Column("occurrence_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("worker_id", guid, nullable=True),
        sa.Column("conflicting_booking_id", guid, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "reason IN ('booking-conflict', 'outside-working-hours', 'worker-time-off', 'worker-inactive')",
            name=op.f("ck_series_conflict_reason_known"),
        ),
        sa.ForeignKeyConstraint(
            ["series_id"], ["booking_series.id"], name=op.f("fk_series_conflict_series_id_booking_series"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conflicting_booking_id"], ["booking.id"], name=op.f("fk_series_conflict_conflicting_booking_id_booking"),
            ondelete="SET NULL",
        ),
        _tenant_fk("series_conflict"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_conflict")),
        sa.UniqueConstraint("series_id", "occurrence_date", name="uq_series_conflict_series_id_occurrence_date"),
    )
    op.create_index(op.f("ix_series_conflict_org_id"), "series_conflict", ["org_id"], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)

    # The materialiser runs for every organisation but the app role sees one organisation at a
    # time. This narrow function, owned by the definer role of 0002 (which alone gets a read policy
    # on booking_series), lists only which series are due and in which organisation; the work
    # itself then runs under that organisation's RLS scope.
    op.execute(f"GRANT SELECT ON booking_series TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON booking_series TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION scheduling_due_series(p_horizon date, p_limit integer)
        RETURNS TABLE (org_id uuid, series_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT s.org_id, s.id FROM booking_series s
            WHERE s.status = 'active'
              AND (s.materialised_until IS NULL OR s.materialised_until < p_horizon)
              AND (s.until_date IS NULL OR s.materialised_until IS NULL OR s.materialised_until < s.until_date)
            ORDER BY s.materialised_until NULLS FIRST, s.id
            LIMIT p_limit
        $$
        """
    )
    # As a non-superuser migrator: membership of the role and CREATE on the schema for the hand-over.
    hand_functions_to(op, DEFINER_ROLE, [DUE_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {DUE_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DUE_FUNCTION}")
    op.drop_table("series_conflict")
    op.drop_table("time_entry")
    op.drop_table("booking_assignment")
    op.drop_table("booking")
    op.drop_table("booking_series")
    op.drop_table("scheduling_settings")
