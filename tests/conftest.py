"""Test harness: a fresh database built by the migrations (never create_all), real Redis, and a
clean slate for every test (tables truncated, Redis db flushed).

The database has the production shape of managed PostgreSQL: DATABASE_URL names the cluster's
admin (a superuser on this machine), which only creates the roles and the database. The tables
are owned, and migrated, by `spotless_owner` (LOGIN CREATEROLE CREATEDB, not a superuser, like the
RDS/Cloud SQL admin user); the app logs in as `spotless_api`, a LOGIN role that is only a member
of `spotless_app`. Roles are cluster-wide and other suites may run at the same moment: they are
created idempotently and never dropped or altered."""

from __future__ import annotations

import os
import shutil
import tempfile

# Metrics from every process (API, workers) meet in one directory; it must exist before
# prometheus_client is imported anywhere.
_PROM_DIR = tempfile.mkdtemp(prefix="spotless-prom-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _PROM_DIR

import asyncio  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import asyncpg  # noqa: E402
import pytest  # noqa: E402
from litestar import Litestar  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from spotless.db.migrations import upgrade  # noqa: E402
from spotless.db.rls import APP_ROLE, DEFINER_ROLE  # noqa: E402
from spotless.db.roles import ensure_login_role  # noqa: E402
from spotless.domain.billing.stripe_client import reset_stripe  # noqa: E402
from spotless.lib.redis import reset_breakers  # noqa: E402
from spotless.settings import Settings, load_settings, normalize_database_url  # noqa: E402
from tests.support import processes  # noqa: E402
from tests.support.client import Client, app_client  # noqa: E402
from tests.support.factories import app_sessions  # noqa: E402, F401 (app-role sessions, RLS in force)

BASE_DATABASE_URL = os.environ.get("DATABASE_URL", "")
BASE_REDIS_URL = os.environ.get("REDIS_URL", "")
if not BASE_DATABASE_URL or not BASE_REDIS_URL:
    raise pytest.UsageError("DATABASE_URL and REDIS_URL must be set: run the tests with `just test`")

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
TEST_DB_NAME = f"spotless_test_{_WORKER}"
OWNER_ROLE = "spotless_owner"
APP_LOGIN_ROLE = "spotless_api"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _as_user(url: str, user: str) -> str:
    """The same server and database, logged in as `user` (trust auth on test clusters)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{user}@{'[' + host + ']' if ':' in host else host}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


ADMIN_URL = _with_database(_plain(BASE_DATABASE_URL), TEST_DB_NAME)
OWNER_URL = _as_user(ADMIN_URL, OWNER_ROLE)
APP_URL = _as_user(ADMIN_URL, APP_LOGIN_ROLE)

# As the cluster admin: the owner role, made race-safely (another suite may be creating it now).
_CREATE_OWNER = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        BEGIN
            CREATE ROLE {OWNER_ROLE} LOGIN CREATEROLE CREATEDB NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END $$;
"""
# Roles an earlier superuser-run migration created: on PostgreSQL 16+ their creator, not our
# owner, holds ADMIN OPTION on them; give the owner what it would hold had it created them.
_ADOPT_GROUP_ROLE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}')
       AND NOT pg_has_role('{owner}', '{role}', 'MEMBER WITH ADMIN OPTION') THEN
        BEGIN
            GRANT {role} TO {owner} WITH ADMIN OPTION;
        EXCEPTION WHEN OTHERS THEN
            IF NOT pg_has_role('{owner}', '{role}', 'MEMBER WITH ADMIN OPTION') THEN
                RAISE;
            END IF;
        END;
    END IF;
END $$;
"""


def test_env(**overrides: str) -> dict[str, str]:
    """Environment for settings and for child processes (API nodes, workers) in tests."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": APP_URL,
        "DATABASE_MIGRATION_URL": OWNER_URL,
        "REDIS_URL": BASE_REDIS_URL,
        "JOB_NAMESPACE": f"spotless-test-{_WORKER}",
        "LOG_LEVEL": "WARNING",
        "METRICS_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "false",
        "EMAIL_MODE": "log",
        "PROMETHEUS_MULTIPROC_DIR": _PROM_DIR,
        # Workers' own exporter off unless a test asks (parallel suites would race for one port).
        "METRICS_PROCESS_PORT": "0",
        # Cheap argon2 in tests (the mechanism is the same; `just bench` measures the real cost).
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "AUTH_ARGON2_PARALLELISM": "1",
        # Tests never reach Stripe: a closed loopback port unless a test points this at the fake
        # (tests/support/fake_stripe.py, `stripe_env`).
        "STRIPE_API_BASE": "http://127.0.0.1:9",
    }
    env.update(overrides)
    return env


# A helper, not a test: modules importing it must not have it collected.
test_env.__test__ = False  # type: ignore[attr-defined]


def make_settings(**overrides: str) -> Settings:
    return load_settings(test_env(**overrides))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session", autouse=True)
async def database(settings: Settings) -> AsyncIterator[str]:
    admin = await asyncpg.connect(_plain(BASE_DATABASE_URL))
    try:
        await admin.execute(_CREATE_OWNER)
        for role in (APP_ROLE, DEFINER_ROLE):
            await admin.execute(_ADOPT_GROUP_ROLE.format(role=role, owner=OWNER_ROLE))
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEST_DB_NAME}" OWNER {OWNER_ROLE}')
    finally:
        await admin.close()
    # Migrations and the app's login exactly as production runs them: as the non-superuser owner.
    await asyncio.to_thread(upgrade, settings)
    owner = create_async_engine(settings.database.migration_url, poolclass=NullPool)
    try:
        async with owner.begin() as conn:
            await conn.run_sync(ensure_login_role, APP_LOGIN_ROLE)
    finally:
        await owner.dispose()
    yield TEST_DB_NAME


@pytest.fixture(scope="session")
async def owner_engine(database: str) -> AsyncIterator[AsyncEngine]:
    """Arranges and inspects rows across organisations; never for app code. It connects as the
    cluster admin, not as the table owner: RLS is forced on the owner too, so the owner sees no
    tenant row without an organisation set (migrations and the app never need to)."""
    engine = create_async_engine(normalize_database_url(ADMIN_URL), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def _tables(owner_engine: AsyncEngine) -> list[str]:
    async with owner_engine.connect() as conn:
        # Reference data the migrations seed (tax_rates) is part of the schema: never truncated.
        rows = await conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('alembic_version', 'tax_rates')"
        )
        return [r[0] for r in rows]


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis.url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean_slate(owner_engine: AsyncEngine, _tables: list[str], settings: Settings) -> AsyncIterator[None]:
    yield
    if _tables:
        async with owner_engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {', '.join(_tables)} RESTART IDENTITY CASCADE")
    client = Redis.from_url(settings.redis.url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    reset_breakers()  # a Redis timeout in one test must not send the next one to its fallbacks
    reset_stripe()  # nor a Stripe outage fail the next one fast


@pytest.fixture
def app(settings: Settings) -> Litestar:
    from spotless.app import create_app

    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[Client]:
    async with app_client(app) as test_client:
        yield test_client


@pytest.fixture
def worker_process() -> Iterator[processes.ManagedProcess]:
    """A real Dramatiq worker (`dramatiq workers.worker`) on the test database and Redis."""
    proc = processes.start_worker(test_env())
    yield proc
    proc.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_PROM_DIR, ignore_errors=True)
