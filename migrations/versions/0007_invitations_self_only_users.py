"""identity: invitations, membership display names, self-only user updates, reset tokens minted at send time

- `invitations`: adding an email to an organisation creates one; the membership exists only once
  the person accepts it signed in as themselves. One pending invitation per (organisation, email);
  the token is stored hashed (NULL until the delivery job mints it).
- `memberships.display_name`: the name an organisation knows a member by (never the person's
  global name).
- `users`: readable by the organisations a user belongs to (and by itself), but INSERT and UPDATE
  only through `app.user_id` (the user's own id). Admin actions that touch the account go through
  `identity_admin_set_password`, which refuses accounts shared with another organisation.
- `password_reset_tokens.token_hash` is NULL until the email job mints the link at send time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import APP_ROLE, enable_tenant_rls

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEFINER_ROLE = "spotless_definer"  # created by 0002
_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"
_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"

FUNCTIONS = {
    # The invitee's side: their pending invitations with the inviting organisation's name (which
    # their own RLS scope cannot read). Keyed on app.user_id, never on a parameter.
    "identity_my_invitations()": f"""
        CREATE OR REPLACE FUNCTION identity_my_invitations()
        RETURNS TABLE (id uuid, org_id uuid, org_name varchar, org_slug varchar, role varchar,
                       expires_at timestamptz, created_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT i.id, o.id, o.name, o.slug, i.role, i.expires_at, i.created_at
            FROM invitations i JOIN organization o ON o.id = i.org_id
            WHERE i.user_id = {_USER} AND i.status = 'pending' AND i.expires_at > now()
            ORDER BY i.created_at, i.id
        $$""",
    # An administrator sets a member's password (temporary password reset); returns when (NULL:
    # refused; the time identifies this reset to its email job). Only for a member of
    # the caller's own organisation (app.org_id) who belongs to no other organisation and has no
    # invitation pending elsewhere: the password is the person's, shared by every organisation.
    "identity_admin_set_password(uuid, text)": f"""
        CREATE OR REPLACE FUNCTION identity_admin_set_password(p_user uuid, p_hash text)
        RETURNS timestamptz
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            v_org uuid := {_ORG};
            v_changed timestamptz;
        BEGIN
            IF v_org IS NULL OR p_hash IS NULL OR length(p_hash) < 20
               OR NOT EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = v_org AND m.user_id = p_user)
               OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = p_user AND m.org_id <> v_org)
               OR EXISTS (SELECT 1 FROM invitations i WHERE i.user_id = p_user AND i.org_id <> v_org
                          AND i.status = 'pending') THEN
                RETURN NULL;
            END IF;
            UPDATE users SET password_hash = p_hash, must_change_password = true,
                   password_changed_at = clock_timestamp(), updated_at = now()
            WHERE id = p_user
            RETURNING password_changed_at INTO v_changed;
            RETURN v_changed;
        END
        $$""",
}


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("email", postgresql.CITEXT(), nullable=False),
        sa.Column("user_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_by", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("created_account", sa.Boolean(), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'dispatcher', 'finance', 'viewer', 'worker')",
            name=op.f("ck_invitations_role_known"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')",
            name=op.f("ck_invitations_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_invitations_org_id_organization"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index(op.f("ix_invitations_org_id"), "invitations", ["org_id"], unique=False)
    op.create_index("ix_invitations_user_id", "invitations", ["user_id"], unique=False)
    op.create_index(
        "uq_invitations_pending_email",
        "invitations",
        ["org_id", "email"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column(
        "memberships", sa.Column("display_name", sa.String(length=200), server_default="", nullable=False)
    )
    op.alter_column("password_reset_tokens", "token_hash", existing_type=sa.String(length=64), nullable=True)

    # --- row-level security -------------------------------------------------------------------
    enable_tenant_rls(op, "invitations")
    # The invitee reads (and answers) the invitations addressed to their own account.
    op.execute(f"CREATE POLICY invitee ON invitations USING (user_id = {_USER}) WITH CHECK (user_id = {_USER})")
    op.execute(f"GRANT SELECT ON invitations TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON invitations TO {DEFINER_ROLE} USING (true) WITH CHECK (true)")
    op.execute(f"GRANT UPDATE (password_hash, must_change_password, password_changed_at, updated_at) "
               f"ON users TO {DEFINER_ROLE}")

    # users: organisations still read their members' rows; only the user itself writes its row.
    member_or_self = (
        f"id = {_USER} OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.org_id = {_ORG})"  # noqa: S608
    )
    op.execute("DROP POLICY IF EXISTS member_or_self ON users")
    op.execute(f"CREATE POLICY member_or_self_read ON users FOR SELECT USING ({member_or_self})")
    op.execute(f"CREATE POLICY self_insert ON users FOR INSERT WITH CHECK (id = {_USER})")
    op.execute(f"CREATE POLICY self_update ON users FOR UPDATE USING (id = {_USER}) WITH CHECK (id = {_USER})")

    # --- functions (owned by the definer role, like 0002's) ------------------------------------
    op.execute(f"GRANT CREATE ON SCHEMA public TO {DEFINER_ROLE}")
    for signature, ddl in FUNCTIONS.items():
        op.execute(ddl)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER_ROLE}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {DEFINER_ROLE}")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for policy in ("member_or_self_read", "self_insert", "self_update"):
        op.execute(f"DROP POLICY IF EXISTS {policy} ON users")
    member_or_self = (
        f"id = {_USER} OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.org_id = {_ORG})"  # noqa: S608
    )
    op.execute(f"CREATE POLICY member_or_self ON users USING ({member_or_self}) WITH CHECK ({member_or_self})")
    op.execute(f"REVOKE UPDATE ON users FROM {DEFINER_ROLE}")
    op.execute("DELETE FROM password_reset_tokens WHERE token_hash IS NULL")
    op.alter_column("password_reset_tokens", "token_hash", existing_type=sa.String(length=64), nullable=False)
    op.drop_column("memberships", "display_name")
    op.drop_table("invitations")
