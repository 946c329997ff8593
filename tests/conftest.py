"""Test harness: a fresh database built by the migrations (never create_all), real Redis, and a
clean slate for every test (tables truncated, Redis db flushed)."""

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

from spotless.db.migrations import upgrade  # noqa: E402
from spotless.lib.redis import reset_breakers  # noqa: E402
from spotless.settings import Settings, load_settings  # noqa: E402
from tests.support import processes  # noqa: E402
from tests.support.client import Client, app_client  # noqa: E402

BASE_DATABASE_URL = os.environ.get("DATABASE_URL", "")
BASE_REDIS_URL = os.environ.get("REDIS_URL", "")
if not BASE_DATABASE_URL or not BASE_REDIS_URL:
    raise pytest.UsageError("DATABASE_URL and REDIS_URL must be set: run the tests with `just test`")

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
TEST_DB_NAME = f"spotless_test_{_WORKER}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def test_env(**overrides: str) -> dict[str, str]:
    """Environment for settings and for child processes (API nodes, workers) in tests."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": _with_database(_plain(BASE_DATABASE_URL), TEST_DB_NAME),
        "REDIS_URL": BASE_REDIS_URL,
        "JOB_NAMESPACE": f"spotless-test-{_WORKER}",
        "LOG_LEVEL": "WARNING",
        "METRICS_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "false",
        "EMAIL_MODE": "log",
        "PROMETHEUS_MULTIPROC_DIR": _PROM_DIR,
        # Cheap argon2 in tests (the mechanism is the same; `just bench` measures the real cost).
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "AUTH_ARGON2_PARALLELISM": "1",
    }
    env.update(overrides)
    return env


def make_settings(**overrides: str) -> Settings:
    return load_settings(test_env(**overrides))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session", autouse=True)
async def database(settings: Settings) -> AsyncIterator[str]:
    admin = await asyncpg.connect(_plain(BASE_DATABASE_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEST_DB_NAME}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, settings)
    yield TEST_DB_NAME


@pytest.fixture(scope="session")
async def owner_engine(database: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Connects as the table owner (like migrations): for arranging and inspecting, never for app code."""
    engine = create_async_engine(settings.database.migration_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def _tables(owner_engine: AsyncEngine) -> list[str]:
    async with owner_engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
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
