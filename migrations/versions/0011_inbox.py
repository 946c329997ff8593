"""inbox: events from outside stored once per (source, external id), processed by a job

A system table (no org_id, no RLS, like job_outbox): at receipt nothing is authenticated and the
sender names its own account, not our organisation; the handler resolves the organisation and
scopes its own writes. See src/spotless/lib/inbox.py.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("source ~ '^[a-z][a-z0-9_]{0,31}$'", name=op.f("ck_inbox_events_source_format")),
        sa.CheckConstraint("length(external_id) BETWEEN 1 AND 255", name=op.f("ck_inbox_events_external_id_length")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_inbox_events_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("source", "external_id", name="uq_inbox_events_source_external_id"),
    )
    op.create_index(
        "ix_inbox_events_unhandled", "inbox_events", ["received_at"], postgresql_where=sa.text("handled_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_events_unhandled", table_name="inbox_events")
    op.drop_table("inbox_events")
