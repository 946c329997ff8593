"""delivery reports and travel start: what the far end said of a message, and "on my way"

- `deliveries.status` may be `delivered`: the provider reported the message reached the
  recipient (Twilio's status callback, SendGrid's event webhook). `bounced` (already allowed)
  is set the same way when it did not (an undelivered text, a bounced or dropped email).
- `deliveries.reported_at`: when that report arrived (the log's "delivered/bounced at").
- `booking.travel_started_at`: when an assigned cleaner said they were on their way (the field
  app); set once per booking, so a second press changes nothing and sends nothing.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_STAMP = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
_OLD = "status IN ('queued', 'sent', 'logged', 'skipped', 'suppressed', 'refused', 'bounced', 'failed')"
_NEW = (
    "status IN ('queued', 'sent', 'logged', 'delivered', 'skipped', 'suppressed', 'refused', 'bounced', 'failed')"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_deliveries_status_known"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status_known"), "deliveries", _NEW)
    op.add_column("deliveries", sa.Column("reported_at", _STAMP, nullable=True))
    op.add_column("booking", sa.Column("travel_started_at", _STAMP, nullable=True))


def downgrade() -> None:
    op.drop_column("booking", "travel_started_at")
    op.drop_column("deliveries", "reported_at")
    op.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'delivered'")
    op.drop_constraint(op.f("ck_deliveries_status_known"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status_known"), "deliveries", _OLD)
