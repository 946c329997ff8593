"""Where test rows come from. `arrange` is the cluster admin (a superuser, so row-level security
does not hide other organisations' rows): factories write through it below the API. `AppSessions`
is the application role with RLS in force, bound to one organisation, as a request is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.settings import Settings

T = TypeVar("T")


@asynccontextmanager
async def arrange(owner_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One transaction as the owner engine, committed on success; objects stay readable after it."""
    async with AsyncSession(owner_engine, expire_on_commit=False) as db, db.begin():
        yield db


async def add(db: AsyncSession, row: T) -> T:
    """Insert now (flush), so the row has its id and the next factory may reference it."""
    db.add(row)
    await db.flush()
    return row


class AppSessions:
    """Sessions as the application role (RLS in force), each bound to one organisation."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings.database, application_name="spotless-tests", pool_size=2)
        self.factory = session_factory(self.engine)

    @asynccontextmanager
    async def scoped(self, org_id: UUID) -> AsyncIterator[AsyncSession]:
        """One transaction for `org_id`, committed on success (like a request)."""
        async with self.factory() as session:
            bind_org(session, org_id)
            async with session.begin():
                yield session

    async def aclose(self) -> None:
        await self.engine.dispose()


@pytest.fixture(scope="session")
async def app_sessions(database: str, settings: Settings) -> AsyncIterator[AppSessions]:
    sessions = AppSessions(settings)
    yield sessions
    await sessions.aclose()
