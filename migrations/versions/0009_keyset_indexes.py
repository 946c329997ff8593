"""cost: keyset-order indexes for the cursor-paged lists (bookings, clients, audit)

Each list pages by `WHERE (sort_key, id) > (...) ORDER BY sort_key, id LIMIT n + 1` inside one
organisation, so each index is (org_id, sort_key, id): the page is a range scan that stops after
n + 1 rows whatever the depth. Each replaces the (org_id, sort_key) index it extends (a prefix of it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, old index, old columns, new index, new columns)
_INDEXES = (
    ("booking", "ix_booking_org_id_starts_at", ["org_id", "starts_at"], "ix_booking_org_id_starts_at_id",
     ["org_id", "starts_at", "id"]),
    ("client", "ix_client_org_id_name", ["org_id", "name"], "ix_client_org_id_name_id", ["org_id", "name", "id"]),
    ("admin_audit_logs", "ix_admin_audit_logs_org_created", ["org_id", "created_at"],
     "ix_admin_audit_logs_org_created_id", ["org_id", "created_at", "id"]),
)


def upgrade() -> None:
    for table, old, _old_columns, new, new_columns in _INDEXES:
        op.create_index(new, table, new_columns, unique=False)
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, old, old_columns, new, _new_columns in _INDEXES:
        op.create_index(old, table, old_columns, unique=False)
        op.drop_index(new, table_name=table)
