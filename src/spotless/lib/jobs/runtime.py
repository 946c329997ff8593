"""Per-process resources for jobs: built on first use inside the worker (after fork), never at import."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
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
# The worker process's broker (`workers.worker`): set, each runtime built here installs an outbox
# relay over it, so what a job's transaction enqueues (a subscriber's delivery, a follow-up) goes to
# the broker right after its commit, as the API's commits do, instead of waiting for the sweep.
_relay_broker: Any = None


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


def relay_commits_through(broker: Any) -> None:
    """Called once by the worker entry point; the runtime (built after the fork) uses it."""
    global _relay_broker
    _relay_broker = broker


def get_runtime() -> JobRuntime:
    global _runtime
    if _runtime is None or _runtime.runner_id != runner_id():
        _runtime = build_runtime(load_settings())
        if _relay_broker is not None:
            # Imported here: the outbox module imports the job registry, which imports this one.
            from spotless.lib.jobs.outbox import OutboxRelay, install_relay

            install_relay(OutboxRelay(_runtime.sessionmaker, _relay_broker))
    return _runtime


def installed_runtime() -> JobRuntime | None:
    """The runtime set now, if any (a test swapping in its own puts this one back after)."""
    return _runtime


def set_runtime(runtime: JobRuntime | None) -> None:
    """Tests and one-shot runs install their own runtime."""
    global _runtime
    _runtime = runtime
