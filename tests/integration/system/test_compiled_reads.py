"""`lib.sql`: hot reads compiled once and run through asyncpg still run inside the request's
transaction, under its organisation's row-level security, and fail the way SQLAlchemy's do."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.clients.models import Client
from spotless.lib.sql import Compiled
from tests.support.factories import AppSessions, arrange, new_client, new_org

CLIENTS = Compiled(select(Client.id, Client.name).where(Client.org_id == bindparam("org_id")).order_by(Client.name))


async def test_a_compiled_read_sees_only_its_organisation_even_when_asked_for_another(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    async with arrange(owner_engine) as db:
        mine, theirs = await new_org(db), await new_org(db)
        await new_client(db, mine.id, name="Ada")
        await new_client(db, theirs.id, name="Zed")
    async with app_sessions.scoped(mine.id) as session:
        rows = await CLIENTS.rows(session, {"org_id": mine.id})
        assert [r.name for r in rows] == ["Ada"]
        # The statement names the other organisation: RLS (the transaction's scope) still hides it.
        assert await CLIENTS.rows(session, {"org_id": theirs.id}) == []


async def test_it_runs_in_the_same_transaction_as_the_sessions_other_statements(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    async with arrange(owner_engine) as db:
        org = await new_org(db)
    async with app_sessions.scoped(org.id) as session:
        session.add(Client(org_id=org.id, name="Not yet committed"))
        await session.flush()
        rows = await CLIENTS.rows(session, {"org_id": org.id})
        assert [r.name for r in rows] == ["Not yet committed"]
        await session.rollback()
    async with app_sessions.scoped(org.id) as session:
        assert await CLIENTS.rows(session, {"org_id": org.id}) == []


async def test_a_database_error_is_sqlalchemys_and_a_missing_value_is_refused(
    owner_engine: AsyncEngine, app_sessions: AppSessions
) -> None:
    async with arrange(owner_engine) as db:
        org = await new_org(db)
    slow = Compiled(select(func.pg_sleep(bindparam("seconds")).label("slept")))
    async with app_sessions.scoped(org.id) as session:
        await session.execute(text("SET LOCAL statement_timeout = 50"))
        with pytest.raises(DBAPIError) as raised:
            await slow.rows(session, {"seconds": 1})
        assert "statement timeout" in str(raised.value.orig)
    async with app_sessions.scoped(org.id) as session:
        with pytest.raises(ValueError, match="org_id"):
            await CLIENTS.rows(session, {})
