"""idempotency keys: a claim generation that fences a lease taken over after it expired

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a column with a constant default is a catalog-only change (no table rewrite).
    op.add_column("idempotency_keys", sa.Column("claim_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "claim_generation")
