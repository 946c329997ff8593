"""Row-level security and role DDL used by migrations: every tenant table is forced under one policy.

Migrations run as the owner of the tables, which on managed PostgreSQL (RDS, Cloud SQL, Azure) is
NOT a superuser: it has CREATEROLE, owns the database, and must be a member of a role before it can
hand an object to it (`ALTER ... OWNER TO`), and that role needs CREATE on the schema. On
PostgreSQL 16+ a CREATEROLE user that creates a role gets only ADMIN OPTION on it, not membership,
so it grants the role to itself right after creating it. Roles are cluster-wide and several
migrators may race on them (parallel test databases): every statement here is idempotent and
tolerates losing that race.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

APP_ROLE = "spotless_app"
DEFINER_ROLE = "spotless_definer"
ORG_SETTING = "app.org_id"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def role_name(name: str) -> str:
    """A role name we can splice into DDL (roles cannot be bound parameters)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain lower-case role name: {name!r}")
    return name


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


def create_group_role_sql(role: str) -> str:
    """A NOLOGIN role that owns nothing and cannot bypass RLS, created once for the cluster.
    Losing a creation race to another migrator is fine: the role exists either way."""
    role = role_name(role)
    return f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                BEGIN
                    CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
        END $$;
    """  # noqa: S608 (names pass role_name(): plain identifiers only)


def can_set_role_sql(var: str, member: str, role: str) -> str:
    """PL/pgSQL that sets boolean `var`: may `member` act as `role` (SET ROLE, ALTER ... OWNER TO)?
    PostgreSQL 16+ splits membership into ADMIN / INHERIT / SET options, and the creator of a role
    holds ADMIN only, which counts as MEMBER but not as SET; before 16, MEMBER is the test.
    `member` is an SQL expression (`current_user`, or a quoted name)."""
    role = role_name(role)
    return f"""
            IF current_setting('server_version_num')::int >= 160000 THEN
                {var} := pg_has_role({member}, '{role}', 'SET');
            ELSE
                {var} := pg_has_role({member}, '{role}', 'MEMBER');
            END IF;"""


def grant_role_to_migrator_sql(role: str, *, required: bool) -> str:
    """Let the migrating user act as `role` (PostgreSQL 16+ does not let a role's creator do so).

    `required`: the migration hands objects to this role, which needs it; fail with a message an
    operator can act on rather than a bare "must be able to SET ROLE" later."""
    role = role_name(role)
    on_failure = (
        f"RAISE EXCEPTION 'the migration user % must be able to SET ROLE {role}: as a role holding ADMIN "
        f"OPTION on {role} (its creator, or the cluster admin) run GRANT {role} TO %', current_user, current_user"
        if required
        else f"RAISE NOTICE 'the migration user is not a member of {role} (only needed when it also logs the app in)'"
    )
    return f"""
        DO $$
        DECLARE
            can_set boolean;
        BEGIN
            {can_set_role_sql("can_set", "current_user", role)}
            IF NOT can_set THEN
                BEGIN
                    -- A new grant from us: SET and INHERIT by default (16+), plain membership before.
                    EXECUTE format('GRANT {role} TO %I', current_user);
                EXCEPTION WHEN OTHERS THEN
                    -- Another migrator may have granted it at the same moment; judge by the result.
                    NULL;
                END;
            END IF;
            {can_set_role_sql("can_set", "current_user", role)}
            IF NOT can_set THEN
                {on_failure};
            END IF;
        END $$;
    """


def hand_functions_to(op: object, role: str, signatures: Iterable[str]) -> None:
    """`ALTER FUNCTION ... OWNER TO role` as a non-superuser: the migrator must be a member of the
    role (see `grant_role_to_migrator_sql`) and the new owner needs CREATE on the schema, granted
    only for the hand-over. Every function is also closed to PUBLIC: callers get explicit grants."""
    role = role_name(role)
    execute = op.execute  # type: ignore[attr-defined]
    execute(grant_role_to_migrator_sql(role, required=True))
    execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    for signature in signatures:
        execute(f"ALTER FUNCTION {signature} OWNER TO {role}")
        execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
