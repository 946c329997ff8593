"""Least privilege in the database: the shape of managed PostgreSQL (RDS, Cloud SQL).

The migrations run as an owner that is not a superuser; the application logs in as a role that is
only a member of the application role, owns nothing and cannot change the schema."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine
from spotless.db.migrations import head_revision, upgrade
from tests.conftest import ADMIN_URL, APP_LOGIN_ROLE, OWNER_ROLE, _as_user, _with_database, make_settings


async def test_the_tables_belong_to_a_non_superuser_owner(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        owners = set(
            (await conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")))
            .scalars()
            .all()
        )
        flags = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = :r"), {"r": OWNER_ROLE}
            )
        ).one()
    assert owners == {OWNER_ROLE}
    assert (flags.rolsuper, flags.rolbypassrls, flags.rolcreaterole) == (False, False, True)


async def test_a_fresh_database_migrates_to_head_as_the_non_superuser_owner() -> None:
    """Before: 0004 handed its function to spotless_definer without CREATE on the schema, which
    only a superuser may skip ("permission denied for schema public")."""
    name = f"spotless_fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}')
    finally:
        await admin.close()
    try:
        owner_url = _as_user(_with_database(ADMIN_URL, name), OWNER_ROLE)
        settings = make_settings(DATABASE_MIGRATION_URL=owner_url)
        await asyncio.to_thread(upgrade, settings)
        conn = await asyncpg.connect(owner_url)
        try:
            assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
            definer_functions = await conn.fetch(
                "SELECT proname, proowner::regrole::text AS owner FROM pg_proc "
                "WHERE pronamespace = 'public'::regnamespace AND prosecdef"
            )
        finally:
            await conn.close()
        assert definer_functions and {r["owner"] for r in definer_functions} == {"spotless_definer"}
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_the_app_logs_in_as_a_member_of_the_app_role_only(settings, owner_engine: AsyncEngine) -> None:
    engine = create_engine(settings.database, application_name="roles-test")
    try:
        async with engine.connect() as conn:
            who = (await conn.execute(text("SELECT session_user, current_user"))).one()
    finally:
        await engine.dispose()
    assert tuple(who) == (APP_LOGIN_ROLE, settings.database.app_role)

    async with owner_engine.connect() as conn:
        login = (
            await conn.execute(
                text(
                    "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, "
                    "ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
                    "      WHERE m.member = r.oid) AS member_of, "
                    "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owned "
                    "FROM pg_roles r WHERE rolname = :r"
                ),
                {"r": APP_LOGIN_ROLE},
            )
        ).one()
    assert (login.rolsuper, login.rolbypassrls, login.rolcreaterole, login.rolcreatedb) == (False,) * 4
    assert login.member_of == [settings.database.app_role]
    assert login.owned == 0


async def test_the_app_login_cannot_change_the_schema_even_without_its_role(settings) -> None:
    """A connection that forgot (or reset) `SET ROLE` is still not the owner."""
    conn = await asyncpg.connect(settings.database.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute("RESET ROLE")
        for ddl in (
            "CREATE TABLE intruder (id int)",
            "ALTER TABLE booking DISABLE ROW LEVEL SECURITY",
            "DROP POLICY tenant_isolation ON client",
            "TRUNCATE client",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute(ddl)
        # And without an organisation it sees no tenant row, as the app role does.
        assert await conn.fetchval("SELECT count(*) FROM memberships") == 0
    finally:
        await conn.close()
