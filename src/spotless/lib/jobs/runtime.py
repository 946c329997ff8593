"""Per-process resources for jobs: built on first use inside the worker (after fork), never at import."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.lib.redis import create_redis
from spotless.settings import Settings, load_settings


@dataclass
class JobRuntime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    runner_id: str

    @asynccontextmanager
    async def session(self, org_id: UUID | str | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, scoped to `org_id` when given (RLS applies in jobs too)."""
        async with self.sessionmaker() as session:
            bind_org(session, org_id)
            async with session.begin():
                yield session

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


_runtime: JobRuntime | None = None


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_runtime(settings: Settings, application_name: str = "spotless-worker") -> JobRuntime:
    engine = create_engine(settings.database, application_name=application_name, pool_size=5, max_overflow=5)
    return JobRuntime(
        settings=settings,
        engine=engine,
        sessionmaker=session_factory(engine),
        redis=create_redis(settings.redis),
        runner_id=runner_id(),
    )


def get_runtime() -> JobRuntime:
    global _runtime
    if _runtime is None or _runtime.runner_id != runner_id():
        _runtime = build_runtime(load_settings())
    return _runtime


def set_runtime(runtime: JobRuntime | None) -> None:
    """Tests and one-shot runs install their own runtime."""
    global _runtime
    _runtime = runtime
