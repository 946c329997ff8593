"""google calendar: synced busy time, calendars' sync cursors and watch channels, pushed events, conflicts

- `external_busy` (workforce): a worker's busy time from their own calendar, only times; read with
  time off by the schedules statement, so it blocks availability and assignment the same way.
- `gcal_calendars`: one row per connected Google calendar (composite FK to integration_connections):
  the sync token (the cursor that survives restarts), back-off, and the watch channel (token kept
  as a SHA-256 only; a replaced channel waits in old_channel_* until stopped).
- `gcal_events`: the visits we pushed (event id, digest of what we wrote, Google's etag).
- `gcal_conflicts`: visits a newly synced busy block overlaps, for dispatch.
- `series_conflict.reason` accepts 'worker-calendar-busy' (the materialiser records it like time off).
- `gcal_channel_owner(channel_id)`: SECURITY DEFINER look-up for the public notification endpoint,
  which has no organisation bound: the channel's organisation, calendar row and token hash only.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
TZ = sa.DateTime(timezone=True)
CHANNEL_FUNCTION = "gcal_channel_owner(text)"
TABLES = ("external_busy", "gcal_calendars", "gcal_events", "gcal_conflicts")
REASONS_BEFORE = "'booking-conflict', 'outside-working-hours', 'worker-time-off', 'worker-inactive'"
REASONS_AFTER = "'booking-conflict', 'outside-working-hours', 'worker-time-off', 'worker-calendar-busy', 'worker-inactive'"


def _common(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("id", GUID, nullable=False),
        sa.Column("org_id", GUID, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["org_id"], ["organization.id"], name=f"fk_{table}_org_id_organization", ondelete="CASCADE"),
        sa.UniqueConstraint("org_id", "id", name=f"uq_{table}_org_id_id"),
    ]


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column, "org_id"], [f"{target}.id", f"{target}.org_id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "external_busy",
        *_common("external_busy"),
        sa.Column("worker_id", GUID, nullable=False),
        sa.Column("source_id", GUID, nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        _fk("external_busy", "worker_id", "worker", "CASCADE"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_external_busy_ends_after_starts"),
        sa.UniqueConstraint("org_id", "source_id", "external_id", name="uq_external_busy_source_event"),
    )
    op.create_index("ix_external_busy_worker_id_starts_at", "external_busy", ["worker_id", "starts_at"])
    op.create_table(
        "gcal_calendars",
        *_common("gcal_calendars"),
        sa.Column("connection_id", GUID, nullable=False),
        sa.Column("worker_id", GUID, nullable=True),
        sa.Column("calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("full_synced_at", TZ, nullable=True),
        sa.Column("synced_at", TZ, nullable=True),
        sa.Column("backoff_until", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("channel_resource_id", sa.String(length=255), nullable=True),
        sa.Column("channel_token_hash", sa.String(length=64), nullable=True),
        sa.Column("channel_expires_at", TZ, nullable=True),
        sa.Column("old_channel_id", sa.String(length=64), nullable=True),
        sa.Column("old_channel_resource_id", sa.String(length=255), nullable=True),
        _fk("gcal_calendars", "connection_id", "integration_connections", "CASCADE"),
        _fk("gcal_calendars", "worker_id", "worker", "SET NULL (worker_id)"),
        sa.UniqueConstraint("org_id", "connection_id", name="uq_gcal_calendars_connection"),
        sa.UniqueConstraint("channel_id", name="uq_gcal_calendars_channel_id"),
    )
    op.create_table(
        "gcal_events",
        *_common("gcal_events"),
        sa.Column("calendar_id", GUID, nullable=False),
        sa.Column("booking_id", GUID, nullable=False),
        sa.Column("google_event_id", sa.String(length=1024), nullable=False),
        sa.Column("pushed_version", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", TZ, nullable=True),
        sa.Column("overwritten", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _fk("gcal_events", "calendar_id", "gcal_calendars", "CASCADE"),
        _fk("gcal_events", "booking_id", "booking", "CASCADE"),
        sa.UniqueConstraint("org_id", "calendar_id", "booking_id", name="uq_gcal_events_calendar_booking"),
        sa.UniqueConstraint("org_id", "calendar_id", "google_event_id", name="uq_gcal_events_calendar_event"),
    )
    op.create_index("ix_gcal_events_booking_id", "gcal_events", ["booking_id"])
    op.create_table(
        "gcal_conflicts",
        *_common("gcal_conflicts"),
        sa.Column("booking_id", GUID, nullable=False),
        sa.Column("worker_id", GUID, nullable=False),
        sa.Column("busy_id", GUID, nullable=False),
        sa.Column("busy_starts_at", TZ, nullable=False),
        sa.Column("busy_ends_at", TZ, nullable=False),
        _fk("gcal_conflicts", "booking_id", "booking", "CASCADE"),
        _fk("gcal_conflicts", "worker_id", "worker", "CASCADE"),
        _fk("gcal_conflicts", "busy_id", "external_busy", "CASCADE"),
        sa.UniqueConstraint("org_id", "booking_id", "busy_id", name="uq_gcal_conflicts_booking_busy"),
    )
    op.create_index("ix_gcal_conflicts_org_id_created_at", "gcal_conflicts", ["org_id", "created_at"])
    for table in TABLES:
        op.create_index(f"ix_{table}_org_id", table, ["org_id"])
        enable_tenant_rls(op, table)

    op.drop_constraint(op.f("ck_series_conflict_reason_known"), "series_conflict", type_="check")
    op.create_check_constraint(op.f("ck_series_conflict_reason_known"), "series_conflict", f"reason IN ({REASONS_AFTER})")

    op.execute(f"GRANT SELECT ON gcal_calendars TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON gcal_calendars TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION gcal_channel_owner(p_channel text)
        RETURNS TABLE (org_id uuid, calendar_row_id uuid, token_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT c.org_id, c.id, c.channel_token_hash::text FROM gcal_calendars c
            WHERE c.channel_id = p_channel
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [CHANNEL_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {CHANNEL_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {CHANNEL_FUNCTION}")
    op.execute("DROP POLICY IF EXISTS definer_access ON gcal_calendars")
    op.execute(f"REVOKE SELECT ON gcal_calendars FROM {DEFINER_ROLE}")
    op.execute("DELETE FROM series_conflict WHERE reason = 'worker-calendar-busy'")
    op.drop_constraint(op.f("ck_series_conflict_reason_known"), "series_conflict", type_="check")
    op.create_check_constraint(op.f("ck_series_conflict_reason_known"), "series_conflict", f"reason IN ({REASONS_BEFORE})")
    for table in reversed(TABLES):
        op.drop_table(table)
