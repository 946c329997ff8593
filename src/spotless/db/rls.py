"""Row-level security DDL used by migrations: every tenant table is forced under one policy."""

from __future__ import annotations

APP_ROLE = "spotless_app"
ORG_SETTING = "app.org_id"


def tenant_rls_statements(table: str) -> list[str]:
    """Statements that put `table` under the organisation policy (idempotent)."""
    predicate = f"org_id = NULLIF(current_setting('{ORG_SETTING}', true), '')::uuid"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})",
    ]


def enable_tenant_rls(op: object, table: str) -> None:
    for statement in tenant_rls_statements(table):
        op.execute(statement)  # type: ignore[attr-defined]
