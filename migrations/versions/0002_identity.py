"""identity: organisations, users, memberships, sessions, refresh/reset tokens, audit log, idempotency keys

Row-level security everywhere a row belongs to an organisation (and on organization and users
themselves); pre-authentication look-ups go through SECURITY DEFINER functions owned by a NOLOGIN
role `spotless_definer`, which alone has read policies across organisations. The application role
is never a member of it, so it cannot bypass RLS.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import (
    APP_ROLE,
    DEFINER_ROLE,
    create_group_role_sql,
    enable_tenant_rls,
    grant_role_to_migrator_sql,
    hand_functions_to,
)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("memberships", "auth_sessions", "refresh_tokens", "admin_audit_logs", "idempotency_keys")
_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"
_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"

FUNCTIONS = {
    # Sign-in: every membership of an email (and the user even without one). Returns the hash
    # because verification happens in the app (argon2); nothing else is exposed pre-auth.
    "auth_login_candidates(citext)": """
        CREATE OR REPLACE FUNCTION auth_login_candidates(p_email citext)
        RETURNS TABLE (user_id uuid, email citext, full_name varchar, password_hash varchar,
                       must_change_password boolean, org_id uuid, org_slug varchar, org_name varchar,
                       role varchar, member_active boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT u.id, u.email, u.full_name, u.password_hash, u.must_change_password,
                   o.id, o.slug, o.name, m.role, m.is_active
            FROM users u
            LEFT JOIN memberships m ON m.user_id = u.id
            LEFT JOIN organization o ON o.id = m.org_id
            WHERE u.email = p_email
            ORDER BY o.slug
        $$""",
    # A password change ends the user's sessions in every organisation, not only the caller's.
    "auth_revoke_user_sessions(uuid, uuid, text)": """
        CREATE OR REPLACE FUNCTION auth_revoke_user_sessions(p_user uuid, p_except uuid, p_reason text)
        RETURNS TABLE (session_id uuid, org_id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE auth_sessions s SET revoked_at = now(), revoked_reason = p_reason, updated_at = now()
            WHERE s.user_id = p_user AND s.revoked_at IS NULL AND (p_except IS NULL OR s.id <> p_except)
            RETURNING s.id, s.org_id
        $$""",
    # Housekeeping across organisations (periodic job identity.purge_expired).
    "identity_purge_expired(integer)": """
        CREATE OR REPLACE FUNCTION identity_purge_expired(p_idempotency_hours integer)
        RETURNS integer
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            n integer; total integer := 0;
        BEGIN
            DELETE FROM auth_sessions WHERE expires_at < now() - interval '1 day'
                OR revoked_at < now() - interval '1 day';
            GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
            DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day';
            GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
            DELETE FROM password_reset_tokens WHERE expires_at < now() - interval '1 day';
            GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
            DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => p_idempotency_hours);
            GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
            RETURN total;
        END
        $$""",
    # The invariant behind /problems/last-owner, enforced at commit whatever code path ran.
    "memberships_keep_an_owner()": """
        CREATE OR REPLACE FUNCTION memberships_keep_an_owner()
        RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            IF OLD.role = 'owner' AND OLD.is_active
               AND EXISTS (SELECT 1 FROM organization o WHERE o.id = OLD.org_id)
               AND NOT EXISTS (SELECT 1 FROM memberships m
                               WHERE m.org_id = OLD.org_id AND m.role = 'owner' AND m.is_active) THEN
                RAISE EXCEPTION 'organisation % would be left without an active owner', OLD.org_id
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'memberships_last_owner';
            END IF;
            RETURN NULL;
        END
        $$""",
}
CALLABLE_BY_APP = ("auth_login_candidates(citext)", "auth_revoke_user_sessions(uuid, uuid, text)",
                   "identity_purge_expired(integer)")


def upgrade() -> None:
    op.create_table('organization',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('locale', sa.String(length=35), nullable=False),
    sa.Column('business_hours', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('tax_rate_bps', sa.Integer(), nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('contact_phone', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_organization_currency_format')),
    sa.CheckConstraint("slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'", name=op.f('ck_organization_slug_format')),
    sa.CheckConstraint('tax_rate_bps BETWEEN 0 AND 10000', name=op.f('ck_organization_tax_rate_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization')),
    sa.UniqueConstraint('slug', name='uq_organization_slug')
    )
    op.create_table('users',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('email', postgresql.CITEXT(), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name='uq_users_email')
    )
    op.create_table('memberships',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('owner', 'admin', 'dispatcher', 'finance', 'viewer', 'worker')", name=op.f('ck_memberships_role_known')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_memberships_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('org_id', 'user_id', name='uq_memberships_org_user')
    )
    op.create_index(op.f('ix_memberships_org_id'), 'memberships', ['org_id'], unique=False)
    op.create_index('ix_memberships_user_id', 'memberships', ['user_id'], unique=False)
    op.create_table('auth_sessions',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=40), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_auth_sessions_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    op.create_index(op.f('ix_auth_sessions_org_id'), 'auth_sessions', ['org_id'], unique=False)
    op.create_index('ix_auth_sessions_org_user', 'auth_sessions', ['org_id', 'user_id'], unique=False)
    op.create_table('refresh_tokens',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('session_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_refresh_tokens_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['auth_sessions.id'], name=op.f('fk_refresh_tokens_session_id_auth_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('org_id', 'token_hash', name='uq_refresh_tokens_org_hash')
    )
    op.create_index(op.f('ix_refresh_tokens_org_id'), 'refresh_tokens', ['org_id'], unique=False)
    op.create_index('ix_refresh_tokens_session_id', 'refresh_tokens', ['session_id'], unique=False)
    op.create_table('password_reset_tokens',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('requested_ip', sa.String(length=64), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_reset_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_tokens')),
    sa.UniqueConstraint('token_hash', name='uq_password_reset_tokens_token_hash')
    )
    op.create_index('ix_password_reset_tokens_user_id', 'password_reset_tokens', ['user_id'], unique=False)
    op.create_table('admin_audit_logs',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('actor_user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    sa.Column('actor_email', sa.String(length=320), nullable=True),
    sa.Column('admin_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_admin_audit_logs_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_audit_logs'))
    )
    op.create_index('ix_admin_audit_logs_org_created', 'admin_audit_logs', ['org_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_admin_audit_logs_org_id'), 'admin_audit_logs', ['org_id'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('in_flight', 'done')", name=op.f('ck_idempotency_keys_status_known')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_idempotency_keys_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('org_id', 'user_id', 'key', name='uq_idempotency_keys_org_user_key')
    )
    op.create_index(op.f('ix_idempotency_keys_org_id'), 'idempotency_keys', ['org_id'], unique=False)

    op.execute(create_group_role_sql(DEFINER_ROLE))
    # The migrator hands the functions below to this role, which needs membership (PostgreSQL 16+
    # does not make the creator a member).
    op.execute(grant_role_to_migrator_sql(DEFINER_ROLE, required=True))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {DEFINER_ROLE}")
    op.execute(f"GRANT SELECT ON organization, users, memberships TO {DEFINER_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE, DELETE ON auth_sessions TO {DEFINER_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON refresh_tokens, password_reset_tokens, idempotency_keys TO {DEFINER_ROLE}")

    # --- row-level security -------------------------------------------------------------------
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)
    op.execute("ALTER TABLE organization ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organization FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON organization USING (id = {_ORG}) WITH CHECK (id = {_ORG})")
    # A user is visible to the organisations it belongs to, and to itself (sign-in, reset, signup).
    member_or_self = (
        f"id = {_USER} OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.org_id = {_ORG})"  # noqa: S608
    )
    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY member_or_self ON users USING ({member_or_self}) WITH CHECK ({member_or_self})")
    op.execute("ALTER TABLE password_reset_tokens ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE password_reset_tokens FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY own_tokens ON password_reset_tokens USING (user_id = {_USER}) WITH CHECK (user_id = {_USER})"
    )
    # The definer role reads across organisations (only inside the functions below).
    for table in ("organization", "users", "memberships", "auth_sessions", "refresh_tokens",
                  "password_reset_tokens", "idempotency_keys"):
        op.execute(f"CREATE POLICY definer_access ON {table} TO {DEFINER_ROLE} USING (true) WITH CHECK (true)")

    # --- audit rows are append-only for the application ----------------------------------------
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON admin_audit_logs FROM {APP_ROLE}")

    # --- functions -----------------------------------------------------------------------------
    for ddl in FUNCTIONS.values():
        op.execute(ddl)
    hand_functions_to(op, DEFINER_ROLE, FUNCTIONS)
    for signature in CALLABLE_BY_APP:
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")
    op.execute("""
        CREATE CONSTRAINT TRIGGER memberships_keep_an_owner
        AFTER UPDATE OR DELETE ON memberships
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION memberships_keep_an_owner()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS memberships_keep_an_owner ON memberships")
    op.execute("DROP POLICY IF EXISTS member_or_self ON users")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for table in ("idempotency_keys", "admin_audit_logs", "password_reset_tokens", "refresh_tokens",
                  "auth_sessions", "memberships", "users", "organization"):
        op.drop_table(table)
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {DEFINER_ROLE}")
