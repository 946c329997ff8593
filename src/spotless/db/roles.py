"""The login the application connects with: a member of the application role, never the owner.

Production shape (RDS, Cloud SQL, compose): three roles.
- the owner (DATABASE_MIGRATION_URL) owns the tables, has CREATEROLE, is not a superuser; it runs
  the migrations and nothing else;
- `spotless_app` (NOLOGIN, created by migration 0001) holds the table grants and is bound by RLS;
- the app's login (DATABASE_URL, e.g. `spotless_api`) is LOGIN and only a member of `spotless_app`.
  It owns nothing, so even a connection that forgot `SET ROLE` cannot alter the schema or escape
  forced RLS.

`just migrate` / the compose `migrate` service create that login after upgrading when
`DATABASE_APP_LOGIN` names it (see migrations/env.py), with `DATABASE_APP_LOGIN_PASSWORD` if set
(leave it unset for IAM authentication, where the operator grants the cloud's IAM role instead).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from spotless.db.rls import APP_ROLE, can_set_role_sql, role_name


def ensure_login_role_sql(login: str, member_of: str = APP_ROLE) -> str:
    """Idempotent and race-safe (several migrators, parallel test sessions): whoever loses a
    CREATE or GRANT race finds the wanted state and carries on. Refuses to turn the migrating
    user itself, or any superuser or RLS-bypassing role, into the app's login."""
    login, member_of = role_name(login), role_name(member_of)
    can_set = can_set_role_sql("can_set", f"'{login}'", member_of)
    return f"""
        DO $$
        DECLARE
            can_set boolean;
        BEGIN
            IF '{login}' = current_user THEN
                RAISE EXCEPTION 'the app login {login} must not be the migrating owner';
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN
                BEGIN
                    CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}' AND (rolsuper OR rolbypassrls)) THEN
                RAISE EXCEPTION 'the app login {login} is a superuser or bypasses RLS: pick another role';
            END IF;
            -- The app's connections SET ROLE to {member_of}: on 16+ that needs the SET option.
            {can_set}
            IF NOT can_set THEN
                BEGIN
                    GRANT {member_of} TO {login};
                EXCEPTION WHEN OTHERS THEN
                    {can_set}
                    IF NOT can_set THEN
                        RAISE;
                    END IF;
                END;
            END IF;
        END $$;
    """  # noqa: S608 (names pass role_name(): plain identifiers only)


def ensure_login_role(connection: Any, login: str, password: str | None = None, member_of: str = APP_ROLE) -> None:
    """Run on a SQLAlchemy (sync) connection of the owner, inside its transaction."""
    connection.execute(text(ensure_login_role_sql(login, member_of)))
    if password:
        # Utility statements take no bind parameters: let the server quote the literal.
        quoted = connection.execute(text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
        connection.execute(text(f"ALTER ROLE {role_name(login)} PASSWORD {quoted}"))
