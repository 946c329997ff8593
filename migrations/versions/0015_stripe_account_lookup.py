"""billing: Stripe Connect account look-ups for webhook processing and event recovery

An incoming event names its Connect account (`event.account`), not our organisation, and the job
that processes it has no organisation bound yet: under row-level security it cannot read
`stripe_accounts`. Two narrow SECURITY DEFINER functions, owned by the definer role of 0002 (which
alone gets a read policy on the table), answer only what those jobs need:
- `billing_stripe_account_org(account_id)`: the organisation a connected account belongs to;
- `billing_stripe_account_ids(after, limit)`: (org_id, account_id) of every connected account, paged
  by org id, for the missed-delivery recovery job.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, hand_functions_to

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ORG_FUNCTION = "billing_stripe_account_org(text)"
LIST_FUNCTION = "billing_stripe_account_ids(uuid, integer)"


def upgrade() -> None:
    op.execute(f"GRANT SELECT ON stripe_accounts TO {DEFINER_ROLE}")
    op.execute("DROP POLICY IF EXISTS definer_access ON stripe_accounts")
    op.execute(f"CREATE POLICY definer_access ON stripe_accounts TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_stripe_account_org(p_account text)
        RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT a.org_id FROM stripe_accounts a WHERE a.account_id = p_account
        $$
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION billing_stripe_account_ids(p_after uuid, p_limit integer)
        RETURNS TABLE (org_id uuid, account_id text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT a.org_id, a.account_id::text FROM stripe_accounts a
            WHERE a.org_id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
            ORDER BY a.org_id
            LIMIT LEAST(GREATEST(p_limit, 1), 1000)
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [ORG_FUNCTION, LIST_FUNCTION])
    for signature in (ORG_FUNCTION, LIST_FUNCTION):
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {LIST_FUNCTION}")
    op.execute(f"DROP FUNCTION IF EXISTS {ORG_FUNCTION}")
    op.execute("DROP POLICY IF EXISTS definer_access ON stripe_accounts")
    op.execute(f"REVOKE SELECT ON stripe_accounts FROM {DEFINER_ROLE}")
