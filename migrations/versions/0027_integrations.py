"""integrations core: connections to outside services (Google, QuickBooks) and OAuth states

- `integration_connections` (tenant table, RLS forced): one grant per (org, provider, owner) while
  not disconnected; the owner (a member's own calendar) is a membership of the same organisation.
  Tokens are stored sealed only (AES-256-GCM, spotless.lib.sealed); a disconnected row keeps none.
- `oauth_states` (tenant table, RLS forced): a connection being made; only the state's sha256 is
  stored, bound to the member who started it, single use.
- `integration_claim_due(provider, interval, limit)`: SECURITY DEFINER, for the sync pollers which
  run with no organisation bound: claims due active connections (FOR UPDATE SKIP LOCKED) and pushes
  their next_sync_at in the same statement, returning only (org_id, id).

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
TZ = sa.DateTime(timezone=True)
CLAIM_FUNCTION = "integration_claim_due(text, integer, integer)"


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
        sa.CheckConstraint("provider IN ('google', 'quickbooks')", name=op.f(f"ck_{table}_provider_known")),
    ]


def upgrade() -> None:
    op.create_table(
        "integration_connections",
        *_common("integration_connections"),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("owner_user_id", GUID, nullable=True),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("access_token_sealed", sa.Text(), nullable=True),
        sa.Column("access_expires_at", TZ, nullable=True),
        sa.Column("refresh_token_sealed", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("last_sync_at", TZ, nullable=True),
        sa.Column("next_sync_at", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("incident", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_user_id"],
            ["memberships.org_id", "memberships.user_id"],
            name="fk_integration_connections_owner_membership",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reconnect', 'disconnected')",
            name=op.f("ck_integration_connections_status_known"),
        ),
        sa.CheckConstraint(
            "status <> 'disconnected' OR (access_token_sealed IS NULL AND refresh_token_sealed IS NULL)",
            name=op.f("ck_integration_connections_disconnected_has_no_tokens"),
        ),
    )
    op.create_index("ix_integration_connections_org_id", "integration_connections", ["org_id"])
    op.create_index(
        "uq_integration_connections_live",
        "integration_connections",
        ["org_id", "provider", sa.text("coalesce(owner_user_id, '00000000-0000-0000-0000-000000000000'::uuid)")],
        unique=True,
        postgresql_where=sa.text("status <> 'disconnected'"),
    )
    op.create_index(
        "ix_integration_connections_due",
        "integration_connections",
        ["provider", "next_sync_at"],
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "oauth_states",
        *_common("oauth_states"),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("owner_user_id", GUID, nullable=True),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("code_verifier_sealed", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["memberships.org_id", "memberships.user_id"],
            name="fk_oauth_states_user_membership",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_oauth_states_org_id", "oauth_states", ["org_id"])
    op.create_index("uq_oauth_states_state_hash", "oauth_states", ["state_hash"], unique=True)
    for table in ("integration_connections", "oauth_states"):
        enable_tenant_rls(op, table)

    op.execute(f"GRANT SELECT, UPDATE ON integration_connections TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON integration_connections TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION integration_claim_due(p_provider text, p_interval integer, p_limit integer)
        RETURNS TABLE (org_id uuid, id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH due AS (
                SELECT c.id FROM integration_connections c
                WHERE c.provider = p_provider AND c.status = 'active'
                  AND (c.next_sync_at IS NULL OR c.next_sync_at <= now())
                ORDER BY c.next_sync_at NULLS FIRST LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE integration_connections c SET next_sync_at = now() + make_interval(secs => p_interval)
            FROM due WHERE c.id = due.id RETURNING c.org_id, c.id
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [CLAIM_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {CLAIM_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {CLAIM_FUNCTION}")
    op.drop_table("oauth_states")
    op.drop_table("integration_connections")
