"""field evidence: checklist templates per service, a job's checklist, job photos, storage deletions

- `checklist_template_item`, `job_checklist_item`, `job_photo`, `storage_deletion` (tenant tables,
  RLS forced, composite FKs to service / booking / worker inside one organisation).
- A trigger on `job_photo` deletes: whatever removes a photo row (the janitor, a booking's cascade,
  retention later) queues its stored objects in `storage_deletion` in the same transaction.
- `storage_janitor_due(...)` and `storage_deletions_due(...)`: SECURITY DEFINER look-ups for the
  janitor, which runs with no organisation bound; they return only ids, keys and the action, and
  the janitor acts on each inside its own organisation.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from spotless.db.rls import APP_ROLE, DEFINER_ROLE, enable_tenant_rls, hand_functions_to

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
JANITOR_FUNCTION = "storage_janitor_due(timestamp with time zone, timestamp with time zone, integer)"
DELETIONS_FUNCTION = "storage_deletions_due(timestamp with time zone, integer)"
TABLES = ("checklist_template_item", "job_checklist_item", "job_photo", "storage_deletion")


def _common(table: str, *, org_fk: bool = True) -> list[sa.SchemaItem]:
    items: list[sa.SchemaItem] = [
        sa.Column("id", GUID, nullable=False),
        sa.Column("org_id", GUID, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]
    if org_fk:
        items += [
            sa.ForeignKeyConstraint(
                ["org_id"], ["organization.id"], name=f"fk_{table}_org_id_organization", ondelete="CASCADE"
            ),
            sa.UniqueConstraint("org_id", "id", name=f"uq_{table}_org_id_id"),
        ]
    return items


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column, "org_id"], [f"{target}.id", f"{target}.org_id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "checklist_template_item",
        *_common("checklist_template_item"),
        sa.Column("service_id", GUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        _fk("checklist_template_item", "service_id", "service", "CASCADE"),
        sa.UniqueConstraint("org_id", "service_id", "position", name="uq_checklist_template_item_position"),
        sa.CheckConstraint("position >= 0", name="ck_checklist_template_item_position_non_negative"),
        sa.CheckConstraint("length(label) BETWEEN 1 AND 200", name="ck_checklist_template_item_label_length"),
    )
    op.create_table(
        "job_checklist_item",
        *_common("job_checklist_item"),
        sa.Column("booking_id", GUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_user_id", GUID, nullable=True),
        sa.Column("done_by_worker_id", GUID, nullable=True),
        _fk("job_checklist_item", "booking_id", "booking", "CASCADE"),
        _fk("job_checklist_item", "done_by_worker_id", "worker", "SET NULL (done_by_worker_id)"),
        sa.UniqueConstraint("org_id", "booking_id", "position", name="uq_job_checklist_item_position"),
        sa.CheckConstraint("(done_at IS NULL) = (done_by_user_id IS NULL)", name="ck_job_checklist_item_done_has_author"),
    )
    op.create_table(
        "job_photo",
        *_common("job_photo"),
        sa.Column("booking_id", GUID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("upload_key", sa.Text(), nullable=True),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_type", sa.String(length=100), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("thumb_key", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_user_id", GUID, nullable=False),
        sa.Column("worker_id", GUID, nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        _fk("job_photo", "booking_id", "booking", "CASCADE"),
        _fk("job_photo", "worker_id", "worker", "SET NULL (worker_id)"),
        sa.CheckConstraint("kind IN ('before', 'after')", name="ck_job_photo_kind_known"),
        sa.CheckConstraint("status IN ('pending', 'confirmed')", name="ck_job_photo_status_known"),
        sa.CheckConstraint(
            "status <> 'confirmed' OR (object_key IS NOT NULL AND thumb_key IS NOT NULL AND size_bytes IS NOT NULL"
            " AND content_type IS NOT NULL AND confirmed_at IS NOT NULL)",
            name="ck_job_photo_confirmed_has_file",
        ),
    )
    op.create_index("ix_job_photo_org_id_booking_id", "job_photo", ["org_id", "booking_id", "created_at"])
    op.create_index(
        "ix_job_photo_pending", "job_photo", ["upload_expires_at"], postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(
        "ix_job_photo_confirmed", "job_photo", ["confirmed_at"], postgresql_where=sa.text("status = 'confirmed'")
    )
    op.create_table(
        "storage_deletion",
        *_common("storage_deletion", org_fk=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("org_id", "object_key", name="uq_storage_deletion_key"),
    )
    op.create_index("ix_storage_deletion_due", "storage_deletion", ["not_before"])
    for table in ("checklist_template_item", "job_checklist_item", "job_photo"):
        op.create_index(f"ix_{table}_org_id", table, ["org_id"])
    op.create_index("ix_storage_deletion_org_id", "storage_deletion", ["org_id"])
    for table in TABLES:
        enable_tenant_rls(op, table)

    op.execute(
        """
        CREATE OR REPLACE FUNCTION job_photo_queue_deletions() RETURNS trigger
        LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
        BEGIN
            INSERT INTO storage_deletion (id, org_id, object_key, not_before, created_at, updated_at)
            SELECT gen_random_uuid(), OLD.org_id, k, now(), now(), now()
            FROM unnest(ARRAY[OLD.upload_key, OLD.object_key, OLD.thumb_key]) AS k WHERE k IS NOT NULL
            ON CONFLICT (org_id, object_key) DO NOTHING;
            RETURN OLD;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER job_photo_queue_deletions AFTER DELETE ON job_photo"
        " FOR EACH ROW EXECUTE FUNCTION job_photo_queue_deletions()"
    )

    for table in ("job_photo", "storage_deletion"):
        op.execute(f"GRANT SELECT ON {table} TO {DEFINER_ROLE}")
        op.execute(f"CREATE POLICY definer_access ON {table} TO {DEFINER_ROLE} USING (true)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION storage_janitor_due(
            p_unconfirmed_before timestamptz, p_retained_before timestamptz, p_limit integer)
        RETURNS TABLE (org_id uuid, photo_id uuid, action text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            (SELECT p.org_id, p.id, 'unconfirmed'::text FROM job_photo p
             WHERE p.status = 'pending' AND p.upload_expires_at <= p_unconfirmed_before
             ORDER BY p.upload_expires_at LIMIT p_limit)
            UNION ALL
            (SELECT p.org_id, p.id, 'retention'::text FROM job_photo p
             WHERE p.status = 'confirmed' AND p.confirmed_at <= p_retained_before
             ORDER BY p.confirmed_at LIMIT p_limit)
        $$
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION storage_deletions_due(p_now timestamptz, p_limit integer)
        RETURNS TABLE (org_id uuid, deletion_id uuid, object_key text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT d.org_id, d.id, d.object_key FROM storage_deletion d
            WHERE d.not_before <= p_now ORDER BY d.not_before LIMIT p_limit
        $$
        """
    )
    hand_functions_to(op, DEFINER_ROLE, [JANITOR_FUNCTION, DELETIONS_FUNCTION])
    op.execute(f"GRANT EXECUTE ON FUNCTION {JANITOR_FUNCTION} TO {APP_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {DELETIONS_FUNCTION} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DELETIONS_FUNCTION}")
    op.execute(f"DROP FUNCTION IF EXISTS {JANITOR_FUNCTION}")
    op.execute("DROP TRIGGER IF EXISTS job_photo_queue_deletions ON job_photo")
    op.execute("DROP FUNCTION IF EXISTS job_photo_queue_deletions()")
    for table in reversed(TABLES):
        op.drop_table(table)
