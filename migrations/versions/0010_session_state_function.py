"""redis: the session check's Postgres fallback in one round trip

While Redis is out, every authenticated request reads its session from Postgres. Done as
BEGIN, set_config, SELECT, COMMIT that is four round trips per request (five with the pool's
pre-ping), which is what made an outage cost more than Redis' own round trip. This function
sets the organisation scope and reads the session in one statement; it runs as the caller
(SECURITY INVOKER), so row-level security applies exactly as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op

from spotless.db.rls import APP_ROLE

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTION = "auth_session_state(uuid, uuid, uuid)"


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION auth_session_state(p_org uuid, p_session uuid, p_user uuid)
        RETURNS TABLE (
            session_id uuid, live boolean, expires_at timestamptz, role text, member_active boolean,
            must_change_password boolean
        )
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        #variable_conflict use_column
        BEGIN
            -- Local to the caller's transaction (the statement's own when autocommitting), and
            -- set before the query below is planned, so its RLS policies see this organisation.
            PERFORM set_config('app.org_id', p_org::text, true);
            RETURN QUERY
                SELECT s.id, s.revoked_at IS NULL AND s.expires_at > now(), s.expires_at,
                       m.role::text, m.is_active, u.must_change_password
                FROM auth_sessions s
                JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
                JOIN users u ON u.id = s.user_id
                WHERE s.org_id = p_org AND s.id = p_session AND s.user_id = p_user;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
