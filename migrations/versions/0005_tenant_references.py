"""tenant references are composite: (x_id, org_id) onto UNIQUE (org_id, id); series cleaners in a table

Referential checks run as the table owner and ignore row-level security, so a foreign key on `id`
alone accepted another organisation's row. Every reference between tenant tables now carries the
row's own `org_id`: the database itself refuses a cross-organisation reference. The series'
cleaner ids move from an array (which no foreign key can check) to `booking_series_worker`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import enable_tenant_rls

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Tables other tenant tables point at: UNIQUE (org_id, id) is what a composite reference needs.
KEYED = (
    "auth_sessions",
    "client",
    "client_address",
    "worker",
    "team",
    "service",
    "booking_series",
    "booking",
    "booking_assignment",
)
# (table, column, target, on delete, existed before as a plain `id` reference)
REFERENCES = (
    ("refresh_tokens", "session_id", "auth_sessions", "CASCADE", True),
    ("client_address", "client_id", "client", "CASCADE", True),
    ("working_hours", "worker_id", "worker", "CASCADE", True),
    ("time_off", "worker_id", "worker", "CASCADE", True),
    ("team_member", "team_id", "team", "CASCADE", True),
    ("team_member", "worker_id", "worker", "CASCADE", True),
    ("service_addon", "service_id", "service", "CASCADE", True),
    ("booking_series", "client_id", "client", "CASCADE", True),
    ("booking_series", "address_id", "client_address", "CASCADE", True),
    ("booking_series", "service_id", "service", "RESTRICT", True),
    ("booking_series", "team_id", "team", "SET NULL", True),
    ("booking_series", "parent_series_id", "booking_series", "SET NULL", True),
    ("booking", "client_id", "client", "CASCADE", True),
    ("booking", "address_id", "client_address", "CASCADE", True),
    ("booking", "service_id", "service", "RESTRICT", True),
    ("booking", "team_id", "team", "SET NULL", True),
    ("booking", "series_id", "booking_series", "SET NULL", True),
    ("booking_assignment", "booking_id", "booking", "CASCADE", True),
    ("booking_assignment", "worker_id", "worker", "RESTRICT", True),
    ("time_entry", "booking_id", "booking", "CASCADE", True),
    ("time_entry", "assignment_id", "booking_assignment", "CASCADE", True),
    ("time_entry", "worker_id", "worker", "RESTRICT", True),
    ("series_conflict", "series_id", "booking_series", "CASCADE", True),
    ("series_conflict", "conflicting_booking_id", "booking", "SET NULL", True),
    # Had no foreign key at all.
    ("series_conflict", "worker_id", "worker", "SET NULL", False),
)


def _fk_name(table: str, column: str, target: str) -> str:
    return f"fk_{table}_{column}_{target}"


def _action(column: str, ondelete: str) -> str:
    # SET NULL of the reference column only: org_id is NOT NULL and part of the key (PG 15+).
    return f"SET NULL ({column})" if ondelete == "SET NULL" else ondelete


def _tables() -> list[str]:
    return sorted({*KEYED, *(r[0] for r in REFERENCES), *(r[2] for r in REFERENCES)})


def _force_rls(on: bool) -> None:
    """The owner is under forced RLS too, and PostgreSQL validates a new foreign key against the
    existing rows with a query that RLS filters: with it forced, rows of the referenced table would
    look missing (or the check would see nothing). Lift it inside this transaction (no one else
    sees the change) and put it back before commit."""
    for table in _tables():
        op.execute(f"ALTER TABLE {table} {'' if on else 'NO '}FORCE ROW LEVEL SECURITY")


def upgrade() -> None:
    _force_rls(False)
    for table in KEYED:
        op.create_unique_constraint(f"uq_{table}_org_id_id", table, ["org_id", "id"])
    for table, column, target, ondelete, existed in REFERENCES:
        name = _fk_name(table, column, target)
        if existed:
            op.drop_constraint(name, table, type_="foreignkey")
        op.create_foreign_key(
            name, table, target, [column, "org_id"], ["id", "org_id"], ondelete=_action(column, ondelete)
        )

    guid = advanced_alchemy.types.guid.GUID(length=16)
    op.create_table(
        "booking_series_worker",
        sa.Column("id", guid, nullable=False),
        sa.Column("series_id", guid, nullable=False),
        sa.Column("worker_id", guid, nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("org_id", guid, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_booking_series_worker_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["series_id", "org_id"],
            ["booking_series.id", "booking_series.org_id"],
            name=op.f("fk_booking_series_worker_series_id_booking_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_id", "org_id"],
            ["worker.id", "worker.org_id"],
            name=op.f("fk_booking_series_worker_worker_id_worker"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series_worker")),
        sa.UniqueConstraint("series_id", "worker_id", name="uq_booking_series_worker_series_id_worker_id"),
    )
    op.create_index(op.f("ix_booking_series_worker_org_id"), "booking_series_worker", ["org_id"], unique=False)
    op.create_index(op.f("ix_booking_series_worker_worker_id"), "booking_series_worker", ["worker_id"], unique=False)

    # Still without forced RLS: the copy reads every organisation's series.
    op.execute(
        """
        INSERT INTO booking_series_worker (id, org_id, series_id, worker_id, position, created_at, updated_at)
        SELECT gen_random_uuid(), s.org_id, s.id, w.worker_id, (w.ord - 1)::smallint, now(), now()
        FROM booking_series s CROSS JOIN LATERAL unnest(s.worker_ids) WITH ORDINALITY AS w(worker_id, ord)
        ON CONFLICT (series_id, worker_id) DO NOTHING
        """
    )
    op.drop_column("booking_series", "worker_ids")
    _force_rls(True)
    enable_tenant_rls(op, "booking_series_worker")


def downgrade() -> None:
    guid = advanced_alchemy.types.guid.GUID(length=16)
    op.add_column(
        "booking_series",
        sa.Column("worker_ids", postgresql.ARRAY(guid), server_default=sa.text("'{}'"), nullable=False),
    )
    _force_rls(False)
    op.execute("ALTER TABLE booking_series_worker NO FORCE ROW LEVEL SECURITY")
    op.execute(
        """
        UPDATE booking_series s SET worker_ids = w.ids
        FROM (SELECT series_id, array_agg(worker_id ORDER BY position) AS ids
              FROM booking_series_worker GROUP BY series_id) w
        WHERE w.series_id = s.id
        """
    )
    op.alter_column("booking_series", "worker_ids", server_default=None)
    op.drop_table("booking_series_worker")
    for table, column, target, ondelete, existed in reversed(REFERENCES):
        name = _fk_name(table, column, target)
        op.drop_constraint(name, table, type_="foreignkey")
        if existed:
            op.create_foreign_key(name, table, target, [column], ["id"], ondelete=ondelete)
    for table in reversed(KEYED):
        op.drop_constraint(f"uq_{table}_org_id_id", table, type_="unique")
    _force_rls(True)
