"""payment holds: a client who owes money keeps their visits, but no cleaner is sent

- `booking.payment_hold`: the visit is kept in the schedule (slot and cleaners kept), marked, and
  not sent to the field.
- `client_payment_holds`: why a client is on hold, one row per unpaid invoice (billing's id; no
  reference across contexts). Their visits are released when the last row goes.
- Trigger `booking_payment_hold`: a visit booked while its client is on hold is held from the
  start, whatever path booked it (the API, the series materialiser, lifting a vacation hold). It
  takes the client's hold lock in share mode, so a hold placed concurrently either sees the new
  visit or is seen by it.
- `billing_due_followups(now, after, limit)`: billing's follow-up job runs for every organisation
  but the app role sees one at a time; this narrow SECURITY DEFINER function lists which
  follow-ups are due and where (ids only), and each step then runs in its organisation's scope.
  (Billing's, here because it came with the holds: it needs 0013's `followups`.)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# 714012: the advisory lock class of a client's payment hold (the second key is
# hashtext(client_id)); the same number is `LOCK_CLASS` in scheduling/payment_holds.py.
HOLD_ON_INSERT = """
    CREATE OR REPLACE FUNCTION booking_payment_hold()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock_shared(714012, hashtext(NEW.client_id::text));
        NEW.payment_hold := EXISTS (
            SELECT 1 FROM client_payment_holds h WHERE h.org_id = NEW.org_id AND h.client_id = NEW.client_id
        );
        RETURN NEW;
    END
    $$"""


DUE_FUNCTION = "billing_due_followups(timestamptz, uuid, integer)"


def upgrade() -> None:
    guid = advanced_alchemy.types.guid.GUID(length=16)
    op.add_column("booking", sa.Column("payment_hold", sa.Boolean(), server_default=sa.text("false"), nullable=False))

    op.create_table(
        "client_payment_holds",
        sa.Column("id", guid, nullable=False),
        sa.Column("org_id", guid, nullable=False),
        sa.Column("client_id", guid, nullable=False),
        sa.Column("invoice_id", guid, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_client_payment_holds_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id", "org_id"],
            ["client.id", "client.org_id"],
            name=op.f("fk_client_payment_holds_client_id_client"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_payment_holds")),
        sa.UniqueConstraint(
            "org_id", "client_id", "invoice_id", name="uq_client_payment_holds_org_id_client_id_invoice_id"
        ),
    )
    op.create_index(op.f("ix_client_payment_holds_org_id"), "client_payment_holds", ["org_id"])
    enable_tenant_rls(op, "client_payment_holds")

    op.execute(HOLD_ON_INSERT)
    op.execute("REVOKE ALL ON FUNCTION booking_payment_hold() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION booking_payment_hold() TO {APP_ROLE}")
    op.execute(
        "CREATE TRIGGER booking_payment_hold BEFORE INSERT ON booking "
        "FOR EACH ROW EXECUTE FUNCTION booking_payment_hold()"
    )

    op.execute(f"GRANT SELECT ON followups TO {DEFINER_ROLE}")
    op.execute(f"CREATE POLICY definer_access ON followups TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_due_followups(p_now timestamptz, p_after uuid, p_limit integer)
        RETURNS TABLE (org_id uuid, followup_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT f.org_id, f.id FROM followups f
            WHERE f.status = 'active' AND f.next_run_at <= p_now AND f.id > p_after
            ORDER BY f.id
            LIMIT p_limit
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [DUE_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {DUE_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DUE_FUNCTION}")
    op.execute("DROP POLICY IF EXISTS definer_access ON followups")
    op.execute(f"REVOKE SELECT ON followups FROM {DEFINER_ROLE}")
    op.execute("DROP TRIGGER IF EXISTS booking_payment_hold ON booking")
    op.execute("DROP FUNCTION IF EXISTS booking_payment_hold()")
    op.drop_table("client_payment_holds")
    op.drop_column("booking", "payment_hold")
