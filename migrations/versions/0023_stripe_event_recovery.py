"""stripe event recovery: where the missed-delivery job left off, per connected account

- `stripe_accounts.events_recovered_at`: when the last complete recovery cycle started. The next
  cycle lists only events created since three days before it (Stripe retries a delivery for three
  days: an older event's delivery state is settled), instead of the whole 30 days every run.
- `stripe_accounts.events_cycle`: a cycle that reached its page cap: its start, its `created` bound
  and, per batch of types, the last event id listed (`starting_after`), so the next run continues
  where it stopped instead of listing the newest events again and never reaching the older ones.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_STAMP = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.add_column("stripe_accounts", sa.Column("events_recovered_at", _STAMP, nullable=True))
    op.add_column("stripe_accounts", sa.Column("events_cycle", sa.dialects.postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("stripe_accounts", "events_cycle")
    op.drop_column("stripe_accounts", "events_recovered_at")
