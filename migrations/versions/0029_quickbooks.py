"""QuickBooks Online sync: the links of our records to QuickBooks ids, and the CDC cursors

- qbo_links (tenant, RLS forced): one row per our record (customer, invoice, payment, refund) and
  QuickBooks company (realm): its QuickBooks Id and SyncToken, what we last pushed (digest, time),
  where it stands and why it failed. Unique on our side (org_id, realm_id, kind, our_id) and on
  theirs (org_id, realm_id, kind, qbo_id): once linked, never matched by name.
- qbo_sync_cursors (tenant, RLS forced): per organisation and realm, how far our pushes and the
  Change Data Capture reads have gone.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import enable_tenant_rls

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
UTC_TS = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
TZ = sa.DateTime(timezone=True)
TENANT_TABLES = ("qbo_links", "qbo_sync_cursors")


def _audit() -> list[sa.Column]:
    return [
        sa.Column("org_id", GUID, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "qbo_links",
        sa.Column("id", GUID, nullable=False),
        sa.Column("connection_id", GUID, nullable=False),
        sa.Column("realm_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("our_id", GUID, nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=True),
        sa.Column("sync_token", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("pushed_digest", sa.String(length=64), nullable=True),
        sa.Column("pushed_at", TZ, nullable=True),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("conflict_qbo_id", sa.String(length=64), nullable=True),
        sa.Column("remote", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("differences", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("checked_at", TZ, nullable=True),
        *_audit(),
        sa.CheckConstraint(
            "kind IN ('customer', 'invoice', 'payment', 'refund')", name=op.f("ck_qbo_links_kind_known")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'synced', 'differs', 'failed', 'needs_choice')", name=op.f("ck_qbo_links_state_known")
        ),
        sa.CheckConstraint("generation >= 0", name=op.f("ck_qbo_links_generation_non_negative")),
        sa.ForeignKeyConstraint(
            ["connection_id", "org_id"],
            ["integration_connections.id", "integration_connections.org_id"],
            name=op.f("fk_qbo_links_connection_id_integration_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_qbo_links_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qbo_links")),
        sa.UniqueConstraint("org_id", "realm_id", "kind", "our_id", name="uq_qbo_links_ours"),
    )
    op.create_index(op.f("ix_qbo_links_org_id"), "qbo_links", ["org_id"], unique=False)
    op.create_index("ix_qbo_links_org_id_state_id", "qbo_links", ["org_id", "state", "id"], unique=False)
    op.create_index(
        "uq_qbo_links_theirs",
        "qbo_links",
        ["org_id", "realm_id", "kind", "qbo_id"],
        unique=True,
        postgresql_where=sa.text("qbo_id IS NOT NULL"),
    )
    op.create_table(
        "qbo_sync_cursors",
        sa.Column("id", GUID, nullable=False),
        sa.Column("connection_id", GUID, nullable=False),
        sa.Column("realm_id", sa.String(length=64), nullable=False),
        sa.Column("pushed_through", TZ, nullable=True),
        sa.Column("pulled_through", TZ, nullable=True),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["connection_id", "org_id"],
            ["integration_connections.id", "integration_connections.org_id"],
            name=op.f("fk_qbo_sync_cursors_connection_id_integration_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_qbo_sync_cursors_org_id_organization"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qbo_sync_cursors")),
        sa.UniqueConstraint("org_id", "realm_id", name="uq_qbo_sync_cursors_org_id_realm_id"),
    )
    op.create_index(op.f("ix_qbo_sync_cursors_org_id"), "qbo_sync_cursors", ["org_id"], unique=False)
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)


def downgrade() -> None:
    op.drop_index(op.f("ix_qbo_sync_cursors_org_id"), table_name="qbo_sync_cursors")
    op.drop_table("qbo_sync_cursors")
    op.drop_index("uq_qbo_links_theirs", table_name="qbo_links", postgresql_where=sa.text("qbo_id IS NOT NULL"))
    op.drop_index("ix_qbo_links_org_id_state_id", table_name="qbo_links")
    op.drop_index(op.f("ix_qbo_links_org_id"), table_name="qbo_links")
    op.drop_table("qbo_links")
