"""notifications: what the organisation chose about reminders, cleaners' agendas and digests

- `notification_settings` (one row per organisation, defaults when absent) and
  `notifications_digest_settings` (the operations guides' digests: digest_key, enabled, schedule,
  recipients), both tenant tables under forced RLS.
- `notifications_organisations(after, limit)`: a SECURITY DEFINER listing of every organisation
  with its zone and notification settings, for the periodic jobs that act in each organisation's
  own time (nothing else leaves the organisation's scope).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TENANT_TABLES = ("notification_settings", "notifications_digest_settings")
ORGS_FUNCTION = "notifications_organisations(uuid, integer)"


def _audit_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("reminders_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("agenda_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("agenda_at", sa.Time(), server_default=sa.text("'18:00'"), nullable=False),
        *_audit_columns(),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_notification_settings_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_notification_settings")),
    )
    op.create_table(
        "notifications_digest_settings",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("digest_key", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("recipients", postgresql.ARRAY(sa.Uuid()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        *_audit_columns(),
        sa.CheckConstraint(
            "schedule IN ('daily', 'weekly', 'monthly')", name=op.f("ck_notifications_digest_settings_schedule_known")
        ),
        sa.CheckConstraint(
            "digest_key ~ '^[a-z][a-z0-9_-]{0,39}$'", name=op.f("ck_notifications_digest_settings_digest_key_format")
        ),
        sa.CheckConstraint(
            "cardinality(recipients) <= 50", name=op.f("ck_notifications_digest_settings_recipients_bounded")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_notifications_digest_settings_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_digest_settings")),
        sa.UniqueConstraint("org_id", "digest_key", name="uq_notifications_digest_settings_org_id_digest_key"),
        sa.UniqueConstraint("org_id", "id", name="uq_notifications_digest_settings_org_id_id"),
    )
    op.create_index(
        op.f("ix_notifications_digest_settings_org_id"), "notifications_digest_settings", ["org_id"], unique=False
    )
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)

    # The periodic jobs (reminders, agendas, digests) run for every organisation in its own zone:
    # this lists organisations with their zone and notification switches, nothing else.
    op.execute(f"GRANT SELECT ON notification_settings TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON notification_settings TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION notifications_organisations(p_after uuid, p_limit integer)
        RETURNS TABLE (org_id uuid, timezone text, reminders_enabled boolean, agenda_enabled boolean,
                       agenda_at time)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT o.id, o.timezone::text, COALESCE(n.reminders_enabled, true),
                   COALESCE(n.agenda_enabled, true), COALESCE(n.agenda_at, time '18:00')
            FROM organization o LEFT JOIN notification_settings n ON n.org_id = o.id
            WHERE o.id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
            ORDER BY o.id
            LIMIT p_limit
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [ORGS_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {ORGS_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ORGS_FUNCTION}")
    op.drop_index(op.f("ix_notifications_digest_settings_org_id"), table_name="notifications_digest_settings")
    op.drop_table("notifications_digest_settings")
    op.drop_table("notification_settings")
