"""series holds: pause a recurring booking for a window (the client's vacation)

- `series_hold`: a tenant table (RLS, composite reference to its series in the same
  organisation); holds of one series never overlap (exclusion on the date range).
- One live booking per series occurrence: the unique (series_id, occurrence_date) now ignores
  cancelled bookings, so a date freed by lifting a hold can be booked again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spotless.db.rls import enable_tenant_rls

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("series_id", sa.Uuid(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_series_hold_ends_after_starts")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organization.id"], name=op.f("fk_series_hold_org_id_organization"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["series_id", "org_id"],
            ["booking_series.id", "booking_series.org_id"],
            name=op.f("fk_series_hold_series_id_booking_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_hold")),
    )
    op.create_index(op.f("ix_series_hold_org_id"), "series_hold", ["org_id"])
    op.create_index(op.f("ix_series_hold_series_id"), "series_hold", ["series_id"])
    op.execute(
        "ALTER TABLE series_hold ADD CONSTRAINT ex_series_hold_overlap EXCLUDE USING gist "
        "(org_id WITH =, series_id WITH =, daterange(starts_on, ends_on, '[]') WITH &&)"
    )
    enable_tenant_rls(op, "series_hold")

    op.drop_constraint("uq_booking_series_occurrence", "booking", type_="unique")
    op.create_index(
        "uq_booking_series_occurrence",
        "booking",
        ["series_id", "occurrence_date"],
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    )


def downgrade() -> None:
    op.drop_index("uq_booking_series_occurrence", table_name="booking")
    # Cancelled duplicates would block the old constraint: keep the newest row per occurrence.
    op.execute(
        "DELETE FROM booking b USING booking o WHERE b.series_id = o.series_id"
        " AND b.occurrence_date = o.occurrence_date AND b.status = 'cancelled' AND b.id < o.id"
    )
    op.create_unique_constraint("uq_booking_series_occurrence", "booking", ["series_id", "occurrence_date"])
    op.drop_table("series_hold")
