"""integrations core: connections to Google Calendar / QuickBooks Online and OAuth states

- integration_connections (tenant, RLS forced): one live (not disconnected) connection per
  organisation, provider and owner (a member's own Google calendar, or the organisation's); tokens
  only sealed (AES-256-GCM, INTEGRATION_TOKEN_KEYS), bound to the row. The owner must be a member
  of the organisation (composite reference onto memberships).
- oauth_states (tenant, RLS forced): a connect in progress, its state kept only as SHA-256, used
  once by the member who started it, before it expires.
- `integration_claim_due(provider, interval_seconds, limit)`: a SECURITY DEFINER claim of the
  active connections whose sync is due, across organisations (the pollers know none): SKIP LOCKED,
  next_sync_at pushed by the interval in the same statement, so two runners never both take one.
  Only (org_id, id, owner_user_id, external_id) come back.

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-03
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
UTC_TS = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
TZ = sa.DateTime(timezone=True)
TENANT_TABLES = ("integration_connections", "oauth_states")
CLAIM_FUNCTION = "integration_claim_due(text, integer, integer)"
LIVE_KEY = "coalesce(owner_user_id, '00000000-0000-0000-0000-000000000000'::uuid)"


def upgrade() -> None:
    op.create_table(
        "integration_connections",
        sa.Column("id", GUID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("owner_user_id", GUID, nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_changed_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("connected_by_user_id", GUID, nullable=True),
        sa.Column("access_token_sealed", sa.Text(), nullable=True),
        sa.Column("access_expires_at", TZ, nullable=True),
        sa.Column("refresh_token_sealed", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("last_refreshed_at", TZ, nullable=True),
        sa.Column("last_sync_at", TZ, nullable=True),
        sa.Column("next_sync_at", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("org_id", GUID, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.CheckConstraint("provider IN ('google', 'quickbooks')", name=op.f("ck_integration_connections_provider_known")),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reconnect', 'disconnected')", name=op.f("ck_integration_connections_status_known")
        ),
        sa.CheckConstraint(
            "provider = 'google' OR owner_user_id IS NULL",
            name=op.f("ck_integration_connections_quickbooks_is_organisation_wide"),
        ),
        sa.CheckConstraint(
            "(status = 'disconnected') = (refresh_token_sealed IS NULL AND access_token_sealed IS NULL)",
            name=op.f("ck_integration_connections_tokens_match_status"),
        ),
        sa.CheckConstraint("error_count >= 0", name=op.f("ck_integration_connections_error_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["owner_user_id", "org_id"],
            ["memberships.user_id", "memberships.org_id"],
            name=op.f("fk_integration_connections_owner_user_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_integration_connections_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_connections")),
        sa.UniqueConstraint("org_id", "id", name="uq_integration_connections_org_id_id"),
    )
    op.create_index(op.f("ix_integration_connections_org_id"), "integration_connections", ["org_id"], unique=False)
    op.create_index(
        "uq_integration_connections_live",
        "integration_connections",
        ["org_id", "provider", sa.text(LIVE_KEY)],
        unique=True,
        postgresql_where=sa.text("status <> 'disconnected'"),
    )
    op.create_index(
        "ix_integration_connections_due",
        "integration_connections",
        ["provider", "next_sync_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "oauth_states",
        sa.Column("id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("for_user", sa.Boolean(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("code_verifier_sealed", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.Column("org_id", GUID, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.CheckConstraint("provider IN ('google', 'quickbooks')", name=op.f("ck_oauth_states_provider_known")),
        sa.ForeignKeyConstraint(
            ["user_id", "org_id"],
            ["memberships.user_id", "memberships.org_id"],
            name=op.f("fk_oauth_states_user_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_oauth_states_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name="uq_oauth_states_state_hash"),
    )
    op.create_index(op.f("ix_oauth_states_org_id"), "oauth_states", ["org_id"], unique=False)
    op.create_index("ix_oauth_states_expires_at", "oauth_states", ["expires_at"], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)
    op.execute(f"GRANT SELECT, UPDATE ON integration_connections TO {DEFINER_ROLE}")
    op.execute(
        f"CREATE POLICY definer_access ON integration_connections TO {DEFINER_ROLE} USING (true) WITH CHECK (true)"
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION integration_claim_due(p_provider text, p_interval_seconds integer, p_limit integer)
        RETURNS TABLE (org_id uuid, id uuid, owner_user_id uuid, external_id text)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH due AS (
                SELECT c.id FROM integration_connections c
                WHERE c.provider = p_provider AND c.status = 'active'
                  AND (c.next_sync_at IS NULL OR c.next_sync_at <= clock_timestamp())
                ORDER BY c.next_sync_at NULLS FIRST, c.id
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE integration_connections c
            SET next_sync_at = clock_timestamp() + make_interval(secs => p_interval_seconds)
            FROM due WHERE c.id = due.id
            RETURNING c.org_id, c.id, c.owner_user_id, c.external_id::text
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [CLAIM_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {CLAIM_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {CLAIM_FUNCTION}")
    op.drop_index("ix_oauth_states_expires_at", table_name="oauth_states")
    op.drop_index(op.f("ix_oauth_states_org_id"), table_name="oauth_states")
    op.drop_table("oauth_states")
    op.drop_index(
        "ix_integration_connections_due",
        table_name="integration_connections",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(
        "uq_integration_connections_live",
        table_name="integration_connections",
        postgresql_where=sa.text("status <> 'disconnected'"),
    )
    op.drop_index(op.f("ix_integration_connections_org_id"), table_name="integration_connections")
    op.drop_table("integration_connections")
