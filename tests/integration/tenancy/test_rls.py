"""Row-level security holds by construction: every table with an org_id is forced under a policy,
the application role cannot bypass it, and a query without an organisation sees nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.lib.jobs.runtime import build_runtime
from tests.support.identity import add_member, signup

# Tables without org_id that still hold per-tenant or per-person data: also under RLS.
ALSO_PROTECTED = {"organization", "users", "password_reset_tokens"}


async def _tenant_tables(owner_engine: AsyncEngine) -> list[str]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'org_id' ORDER BY table_name"
            )
        )
        return [r[0] for r in rows]


async def test_every_org_id_table_has_forced_rls_with_a_policy(owner_engine: AsyncEngine, settings):
    tables = await _tenant_tables(owner_engine)
    assert {"memberships", "auth_sessions", "refresh_tokens", "admin_audit_logs", "idempotency_keys"} <= set(tables)
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                           (SELECT count(*) FROM pg_policies p
                            WHERE p.schemaname = 'public' AND p.tablename = c.relname
                              AND ('public' = ANY(p.roles) OR :app = ANY(p.roles))) AS app_policies
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(:tables)
                    """
                ),
                {"tables": [*tables, *ALSO_PROTECTED], "app": settings.database.app_role},
            )
        ).all()
    state = {r.relname: r for r in rows}
    problems = [
        f"{name}: enabled={r.relrowsecurity} forced={r.relforcerowsecurity} policies={r.app_policies}"
        for name, r in state.items()
        if not (r.relrowsecurity and r.relforcerowsecurity and r.app_policies >= 1)
    ]
    assert not problems, f"tables with org_id must have RLS enabled, forced and a policy: {problems}"
    assert set(state) == set(tables) | ALSO_PROTECTED


async def test_the_app_role_owns_nothing_and_cannot_bypass_rls(owner_engine: AsyncEngine, settings):
    role = settings.database.app_role
    async with owner_engine.connect() as conn:
        flags = (
            await conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role})
        ).one()
        owned = (
            await conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r"),
                {"r": role},
            )
        ).scalar_one()
    assert flags.rolsuper is False and flags.rolbypassrls is False
    assert owned == 0
    # And the app's connections really act as that role.
    engine = create_engine(settings.database, application_name="rls-test")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_user"))).scalar_one() == role
    finally:
        await engine.dispose()


async def _populate(client) -> tuple:
    """Two organisations with rows in every identity table (sessions, refresh tokens, audit,
    idempotency records, reset tokens)."""
    a = await signup(client, name="Alpha")
    b = await signup(client, name="Beta")
    for owner in (a, b):
        await add_member(client, owner, "dispatcher")
        created = await client.post(
            "/v1/iam/users",
            json={"email": f"idem-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"},
            headers={**owner.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert created.status_code == 202, created.text
        await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
        await client.patch("/v1/org", json={"tax_rate_bps": 500}, headers=owner.headers)
    return a, b


async def test_a_raw_query_without_an_organisation_returns_nothing(client, owner_engine: AsyncEngine, settings):
    a, _b = await _populate(client)
    tables = [*await _tenant_tables(owner_engine), *sorted(ALSO_PROTECTED)]
    async with owner_engine.connect() as conn:
        as_owner = {t: (await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one() for t in tables}
    for table in (
        "organization",
        "users",
        "memberships",
        "auth_sessions",
        "refresh_tokens",
        "admin_audit_logs",
        "idempotency_keys",
        "password_reset_tokens",
    ):
        assert as_owner[table] > 0, f"{table} should have rows for this test to mean anything"

    engine = create_engine(settings.database, application_name="rls-test")
    try:
        async with engine.connect() as conn:
            leaked = {t: (await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one() for t in tables}
        assert leaked == dict.fromkeys(tables, 0), f"rows visible without an organisation: {leaked}"

        # Scoped to A: only A's rows (and A's members), never B's.
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.org_id', :org, true)"), {"org": str(a.org_id)})
            orgs = (await conn.execute(text("SELECT id FROM organization"))).scalars().all()
            member_orgs = set((await conn.execute(text("SELECT DISTINCT org_id FROM memberships"))).scalars().all())
            users = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
        assert orgs == [a.org_id]
        assert member_orgs == {a.org_id}
        assert users == 2  # owner, dispatcher (the invited viewer is no member until they accept)
    finally:
        await engine.dispose()


async def test_rows_cannot_be_written_into_another_organisation(client, settings):
    a = await signup(client, name="Alpha")
    b = await signup(client, name="Beta")
    engine = create_engine(settings.database, application_name="rls-test")
    try:
        with pytest.raises((ProgrammingError, DBAPIError), match="row-level security"):
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("SELECT set_config('app.org_id', :org, true)"), {"org": str(a.org_id)})
                # Raw SQL as the application role: the attacker's own statement is what RLS must refuse.
                await conn.execute(
                    text(
                        "INSERT INTO memberships (id, org_id, user_id, role, is_active, created_at, updated_at) "
                        "VALUES (:id, :org, :user, 'owner', true, now(), now())"
                    ),
                    {"id": uuid.uuid4(), "org": b.org_id, "user": a.user_id},
                )
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.org_id', :org, true)"), {"org": str(a.org_id)})
            moved = await conn.execute(
                text("UPDATE memberships SET role = 'viewer' WHERE org_id = :org"), {"org": b.org_id}
            )
            assert moved.rowcount == 0
    finally:
        await engine.dispose()


async def test_jobs_are_scoped_to_their_organisation(client, settings):
    """A job's session (`get_runtime().session(org_id=...)`) sees its organisation only; without
    one it sees nothing, exactly like a request."""
    a = await signup(client, name="Alpha")
    await signup(client, name="Beta")
    runtime = build_runtime(settings, application_name="rls-job-test")
    try:
        async with runtime.session(org_id=a.org_id) as session:
            orgs = (await session.execute(text("SELECT id FROM organization"))).scalars().all()
            memberships = (await session.execute(text("SELECT count(*) FROM memberships"))).scalar_one()
        assert orgs == [a.org_id] and memberships == 1
        async with runtime.session() as session:
            assert (await session.execute(text("SELECT count(*) FROM memberships"))).scalar_one() == 0
    finally:
        await runtime.close()


async def test_the_org_scope_is_per_transaction_not_per_connection(client, settings):
    """SET LOCAL semantics: a pooled connection reused after an A transaction carries nothing over."""
    a = await signup(client, name="Alpha")
    engine = create_engine(settings.database, application_name="rls-test", pool_size=1, max_overflow=0)
    factory = session_factory(engine)
    try:
        async with factory() as session:
            bind_org(session, a.org_id)
            async with session.begin():
                assert (await session.execute(text("SELECT count(*) FROM memberships"))).scalar_one() == 1
        async with factory() as session, session.begin():
            assert (await session.execute(text("SELECT count(*) FROM memberships"))).scalar_one() == 0
            setting = (await session.execute(text("SELECT current_setting('app.org_id', true)"))).scalar_one()
            assert not setting
    finally:
        await engine.dispose()
