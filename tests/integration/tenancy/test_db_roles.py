"""Least privilege in the database: the shape of managed PostgreSQL (RDS, Cloud SQL).

The migrations run as an owner that is not a superuser; the application logs in as a role that is
only a member of the application role, owns nothing and cannot change the schema."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine
from spotless.db.migrations import alembic_config, head_revision, upgrade
from spotless.settings import Settings
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


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.database.migration_url), revision)


@contextlib.asynccontextmanager
async def _fresh_database() -> AsyncIterator[str]:
    """An empty database owned by the non-superuser owner; yields the owner's URL."""
    name = f"spotless_fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}')
    finally:
        await admin.close()
    try:
        yield _as_user(_with_database(ADMIN_URL, name), OWNER_ROLE)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_a_fresh_database_migrates_to_head_as_the_non_superuser_owner() -> None:
    """Before: 0004 handed its function to spotless_definer without CREATE on the schema, which
    only a superuser may skip ("permission denied for schema public")."""
    async with _fresh_database() as owner_url:
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


# Raw SQL: rows of the schema at revision 0004, which today's ORM models no longer describe.
_ORG_A, _ORG_B = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
_ROWS_AT_0004 = f"""
INSERT INTO organization (id, name, slug, timezone, currency, locale, business_hours, tax_rate_bps, created_at,
                          updated_at)
VALUES ('{_ORG_A}', 'A', 'a', 'UTC', 'CAD', 'en', '{{}}', 0, now(), now()),
       ('{_ORG_B}', 'B', 'b', 'UTC', 'CAD', 'en', '{{}}', 0, now(), now());
INSERT INTO client (id, org_id, name, tags, blocked, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-0000000000c1', '{_ORG_A}', 'c', '{{}}', false, now(), now());
INSERT INTO client_address (id, org_id, client_id, line1, city, country, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-0000000000a1', '{_ORG_A}', '00000000-0000-0000-0000-0000000000c1', 'l', 'c', 'CA',
        now(), now());
INSERT INTO service (id, org_id, name, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-0000000000d1', '{_ORG_A}', 's', now(), now());
INSERT INTO worker (id, org_id, name, skills, active, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-0000000000e1', '{_ORG_A}', 'w1', '{{}}', true, now(), now()),
       ('00000000-0000-0000-0000-0000000000e2', '{_ORG_A}', 'w2', '{{}}', true, now(), now());
INSERT INTO booking_series (id, org_id, client_id, address_id, service_id, worker_ids, frequency, interval, start_time,
                            timezone, anchor_date, params, addon_ids, status, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-0000000000f1', '{_ORG_A}', '00000000-0000-0000-0000-0000000000c1',
        '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000d1',
        ARRAY['00000000-0000-0000-0000-0000000000e2', '00000000-0000-0000-0000-0000000000e1']::uuid[],
        'weekly', 1, '09:00', 'UTC', current_date, '{{}}', '[]', 'active', now(), now());
"""


async def test_composite_references_migrate_existing_rows_and_refuse_cross_organisation_ones() -> None:
    """0005 on a database with data, as the non-superuser owner (under forced RLS): the series'
    cleaners move to their table in order, and a row pointing into another organisation stops it."""
    async with _fresh_database() as owner_url:
        settings = make_settings(DATABASE_MIGRATION_URL=owner_url)
        await asyncio.to_thread(upgrade, settings, "0004")
        admin = await asyncpg.connect(_with_database(ADMIN_URL, owner_url.rsplit("/", 1)[1]))
        try:
            await admin.execute(_ROWS_AT_0004)
            await asyncio.to_thread(upgrade, settings)
            cleaners = await admin.fetch(
                "SELECT worker_id::text, position FROM booking_series_worker ORDER BY position"
            )
            assert [(r["worker_id"][-2:], r["position"]) for r in cleaners] == [("e2", 0), ("e1", 1)]

            await asyncio.to_thread(downgrade, settings, "0004")
            assert await admin.fetchval("SELECT cardinality(worker_ids) FROM booking_series") == 2
            # B's address of A's client: accepted by a foreign key on id alone, refused by 0005.
            await admin.execute(
                "INSERT INTO client_address (id, org_id, client_id, line1, city, country, created_at, updated_at) "
                f"VALUES (gen_random_uuid(), '{_ORG_B}', '00000000-0000-0000-0000-0000000000c1', 'l', 'c', 'CA',"
                " now(), now())"
            )
            with pytest.raises(IntegrityError, match="fk_client_address_client_id_client"):
                await asyncio.to_thread(upgrade, settings)
            assert await admin.fetchval("SELECT version_num FROM alembic_version") == "0004"
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
