"""jobs: periodic runs record completion; the materialiser pages by id and records failures

- `scheduled_runs` gains a status (started / done / failed), a lease and `finished_at`: a slot whose
  run failed, or whose runner died past its lease, is taken over by the retry instead of being a
  no-op; a done slot stays a no-op however often it is delivered.
- `booking_series` gains `materialise_error` / `materialise_failed_at`: a series that cannot be
  materialised (service deactivated, pricing fails ...) says so instead of silently staying due.
- `scheduling_due_series` pages by series id (keyset) and leaves out series that failed recently,
  so no number of stuck series can hide the others.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFINER_ROLE = "spotless_definer"  # created by 0002
OLD_DUE_FUNCTION = "scheduling_due_series(date, integer)"
DUE_FUNCTION = "scheduling_due_series(date, timestamptz, uuid, integer)"


def upgrade() -> None:
    op.add_column("scheduled_runs", sa.Column("status", sa.String(16), server_default="done", nullable=False))
    op.add_column("scheduled_runs", sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.add_column("scheduled_runs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("scheduled_runs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("scheduled_runs", sa.Column("claim_token", sa.Uuid(), nullable=True))
    op.add_column("scheduled_runs", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_scheduled_runs_status_known"), "scheduled_runs", "status IN ('started', 'done', 'failed')"
    )
    op.create_check_constraint(
        op.f("ck_scheduled_runs_started_has_lease"), "scheduled_runs", "status <> 'started' OR lease_until IS NOT NULL"
    )

    op.add_column("booking_series", sa.Column("materialise_error", sa.Text(), nullable=True))
    op.add_column("booking_series", sa.Column("materialise_failed_at", sa.DateTime(timezone=True), nullable=True))

    op.execute(f"DROP FUNCTION IF EXISTS {OLD_DUE_FUNCTION}")
    op.execute(
        """
        CREATE FUNCTION scheduling_due_series(
            p_horizon date, p_retry_before timestamptz, p_after uuid, p_limit integer
        )
        RETURNS TABLE (org_id uuid, series_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT s.org_id, s.id FROM booking_series s
            WHERE s.status = 'active'
              AND s.id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
              AND (s.materialised_until IS NULL OR s.materialised_until < p_horizon)
              AND (s.until_date IS NULL OR s.materialised_until IS NULL OR s.materialised_until < s.until_date)
              AND (s.materialise_failed_at IS NULL OR s.materialise_failed_at < p_retry_before)
            ORDER BY s.id
            LIMIT p_limit
        $$
        """
    )
    _hand_to_definer(DUE_FUNCTION)


def _hand_to_definer(signature: str) -> None:
    # A new owner needs CREATE on the schema (superusers skip that check, a managed database's
    # migrator does not); it is only needed for the hand-over.
    op.execute(f"GRANT CREATE ON SCHEMA public TO {DEFINER_ROLE}")
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER_ROLE}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {DEFINER_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DUE_FUNCTION}")
    op.execute(
        """
        CREATE FUNCTION scheduling_due_series(p_horizon date, p_limit integer)
        RETURNS TABLE (org_id uuid, series_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT s.org_id, s.id FROM booking_series s
            WHERE s.status = 'active'
              AND (s.materialised_until IS NULL OR s.materialised_until < p_horizon)
              AND (s.until_date IS NULL OR s.materialised_until IS NULL OR s.materialised_until < s.until_date)
            ORDER BY s.materialised_until NULLS FIRST, s.id
            LIMIT p_limit
        $$
        """
    )
    _hand_to_definer(OLD_DUE_FUNCTION)
    op.drop_column("booking_series", "materialise_failed_at")
    op.drop_column("booking_series", "materialise_error")
    op.drop_constraint(op.f("ck_scheduled_runs_started_has_lease"), "scheduled_runs", type_="check")
    op.drop_constraint(op.f("ck_scheduled_runs_status_known"), "scheduled_runs", type_="check")
    for column in ("last_error", "claim_token", "finished_at", "lease_until", "attempts", "status"):
        op.drop_column("scheduled_runs", column)
