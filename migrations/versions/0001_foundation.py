"""foundation: the application role, default grants, jobs outbox, heartbeats, scheduled runs

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types
from sqlalchemy.dialects import postgresql

from spotless.db.rls import APP_ROLE, create_group_role_sql, grant_role_to_migrator_sql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None



def upgrade() -> None:
    # The app acts as this role (see DATABASE_APP_ROLE): it owns nothing and cannot bypass RLS, so
    # row-level security holds even when the login user is the owner (dev, CI).
    op.execute(create_group_role_sql(APP_ROLE))
    # Only needed when the migrating user also logs the app in (dev): the app then acts as this
    # role. In production the app logs in as its own member of it (README, "Database roles").
    op.execute(grant_role_to_migrator_sql(APP_ROLE, required=False))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")
    # Every table created later by the owner is usable by the app (no TRUNCATE, no DDL).
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    op.create_table('job_heartbeats',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('last_beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('runner_id', sa.String(length=255), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_heartbeats'))
    )
    op.create_table('job_outbox',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('actor_name', sa.String(length=128), nullable=False),
    sa.Column('queue_name', sa.String(length=64), nullable=False),
    sa.Column('args', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('kwargs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('available_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_outbox'))
    )
    op.create_table('scheduled_runs',
    sa.Column('job_name', sa.String(length=128), nullable=False),
    sa.Column('slot', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('job_name', 'slot', name=op.f('pk_scheduled_runs'))
    )
    op.create_index(
        "ix_job_outbox_pending", "job_outbox", ["available_at"], postgresql_where=sa.text("sent_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table('scheduled_runs')
    op.drop_table('job_outbox')
    op.drop_table('job_heartbeats')
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {APP_ROLE}")
