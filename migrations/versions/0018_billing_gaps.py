"""billing gaps: the dispute fee Stripe returns, and the row that serialises spending a client's credit

- `ledger_entries.kind` may be `fee_reversal`: Stripe's dispute fee given back on a won dispute
  (a negative fee on the reinstating balance transaction), posted once per dispute.
- `client_credit_accounts`: one row per client whose credit was ever spent; applying credit to an
  invoice locks it (`FOR UPDATE`), so two invoices issued at once never spend the same credit. The
  balance itself stays derived from the ledger (credit issued less credit applied).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import enable_tenant_rls

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KINDS_BEFORE = (
    "payment",
    "refund",
    "fee",
    "dispute_withdrawal",
    "dispute_reinstatement",
    "credit_issued",
    "credit_applied",
)
KINDS_AFTER = (*KINDS_BEFORE, "fee_reversal")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def upgrade() -> None:
    op.drop_constraint(op.f("ck_ledger_entries_kind_known"), "ledger_entries", type_="check")
    op.create_check_constraint(op.f("ck_ledger_entries_kind_known"), "ledger_entries", _kinds(KINDS_AFTER))
    op.create_table(
        "client_credit_accounts",
        sa.Column("org_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("client_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id", "org_id"],
            ["client.id", "client.org_id"],
            name=op.f("fk_client_credit_accounts_client_id_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_client_credit_accounts_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "client_id", name=op.f("pk_client_credit_accounts")),
    )
    enable_tenant_rls(op, "client_credit_accounts")


def downgrade() -> None:
    op.drop_table("client_credit_accounts")
    # A database that recorded a returned fee keeps it: the check comes back NOT VALID for old rows.
    op.drop_constraint(op.f("ck_ledger_entries_kind_known"), "ledger_entries", type_="check")
    op.execute(
        f"ALTER TABLE ledger_entries ADD CONSTRAINT ck_ledger_entries_kind_known CHECK ({_kinds(KINDS_BEFORE)}) NOT VALID"
    )
