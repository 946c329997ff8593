"""invitation deliveries: the invitation email goes through `deliveries` like every message

- `deliveries.recipient_kind` may be `invitee`: the invitation email goes to an invitation's
  address, whose person is no member yet (a `user` recipient must be one). The generated
  `invitation_id` column carries the composite reference onto `invitations (org_id, id)`, so an
  invitation of another organisation is refused by the database, like the other recipients.
- `invitations`: unique (org_id, id), the target of that reference.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_unique_constraint(op.f("uq_invitations_org_id_id"), "invitations", ["org_id", "id"])
    op.drop_constraint(op.f("ck_deliveries_recipient_kind_known"), "deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_deliveries_recipient_kind_known"), "deliveries", "recipient_kind IN ('client', 'worker', 'user', 'invitee')"
    )
    op.add_column(
        "deliveries",
        sa.Column(
            "invitation_id",
            advanced_alchemy.types.GUID(length=16),
            sa.Computed("CASE WHEN recipient_kind = 'invitee' THEN recipient_id END", persisted=True),
            nullable=True,
        ),
    )
    op.create_foreign_key(
        op.f("fk_deliveries_org_id_invitations"),
        "deliveries",
        "invitations",
        ["org_id", "invitation_id"],
        ["org_id", "id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_deliveries_org_id_invitations"), "deliveries", type_="foreignkey")
    op.drop_column("deliveries", "invitation_id")
    op.execute("DELETE FROM deliveries WHERE recipient_kind = 'invitee'")
    op.drop_constraint(op.f("ck_deliveries_recipient_kind_known"), "deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_deliveries_recipient_kind_known"), "deliveries", "recipient_kind IN ('client', 'worker', 'user')"
    )
    op.drop_constraint(op.f("uq_invitations_org_id_id"), "invitations", type_="unique")
