"""The pollers' safe cadence: claim_due hands each due active connection to one runner only (SKIP
LOCKED), pushes it by the interval in the same statement, skips disconnected and needs-reconnect
ones, works with no organisation bound; record_sync keeps the outcome."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.public import claim_due, record_sync
from tests.integration.integrations.core.conftest import connection_row
from tests.support.factories import arrange
from tests.support.factories.identity import new_member, new_org
from tests.support.integrations import connect


async def orgs(owner_engine: AsyncEngine, n: int) -> list[UUID]:
    async with arrange(owner_engine) as db:
        return [(await new_org(db)).id for _ in range(n)]


async def member(owner_engine: AsyncEngine, org_id: UUID) -> UUID:
    async with arrange(owner_engine) as db:
        return (await new_member(db, org_id)).user_id


async def test_two_runners_never_take_one_connection_and_the_interval_holds(
    owner_engine, runtime, int_settings
) -> None:
    a, b = await orgs(owner_engine, 2)
    due = {
        await connect(owner_engine, int_settings, a, "google"),
        await connect(owner_engine, int_settings, a, "google", owner_user_id=await member(owner_engine, a)),
        await connect(owner_engine, int_settings, b, "google"),
    }
    stopped = await connect(
        owner_engine, int_settings, b, "google", owner_user_id=await member(owner_engine, b), status="needs_reconnect"
    )
    other_provider = await connect(owner_engine, int_settings, a, "quickbooks")
    gone = await connect(owner_engine, int_settings, b, "google", owner_user_id=await member(owner_engine, b))
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE integration_connections SET status = 'disconnected', access_token_sealed = NULL,"
                " refresh_token_sealed = NULL WHERE id = :g"
            ),
            {"g": gone},
        )
    # Runner 1 holds its claim open while runner 2 claims: they share the work, never overlap.
    async with runtime.session() as first:
        mine = await claim_due(first, "google", 300, 2)
        async with runtime.session() as second:
            theirs = await claim_due(second, "google", 300, 10)
    assert len(mine) == 2 and len(theirs) == 1
    assert {c.id for c in mine} | {c.id for c in theirs} == due
    assert {c.org_id for c in mine + theirs} == {a, b}
    assert stopped not in due and other_provider not in due
    # The runner loops again a minute later: nothing is due until the interval has passed.
    async with runtime.session() as again:
        assert await claim_due(again, "google", 300, 10) == []
    row = await connection_row(owner_engine, next(iter(due)))
    assert row.next_sync_at is not None
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE integration_connections SET next_sync_at = now() - interval '1 second' WHERE id = :c"),
            {"c": row.id},
        )
    async with runtime.session() as later:
        assert [c.id for c in await claim_due(later, "google", 300, 10)] == [row.id]
    async with runtime.session() as session:
        assert [c.id for c in await claim_due(session, "quickbooks", 300, 10)] == [other_provider]


async def test_a_claim_rolled_back_is_due_again(owner_engine, runtime, int_settings) -> None:
    [org] = await orgs(owner_engine, 1)
    connection_id = await connect(owner_engine, int_settings, org, "quickbooks")
    async with runtime.sessionmaker() as session, session.begin():
        assert len(await claim_due(session, "quickbooks", 300, 10)) == 1
        await session.rollback()
    async with runtime.session() as session:
        assert [c.id for c in await claim_due(session, "quickbooks", 300, 10)] == [connection_id]


async def test_record_sync_keeps_the_outcome(owner_engine, runtime, int_settings) -> None:
    [org] = await orgs(owner_engine, 1)
    connection_id = await connect(owner_engine, int_settings, org, "google")
    for _ in range(2):
        async with runtime.session(org) as session:
            await record_sync(session, connection_id, ok=False, error="calendar answered 500 " + "x" * 2_000)
    row = await connection_row(owner_engine, connection_id)
    assert row.error_count == 2 and row.last_error.startswith("calendar answered 500") and len(row.last_error) == 1_000
    assert row.last_sync_at is None
    async with runtime.session(org) as session:
        await record_sync(session, connection_id, ok=True)
    row = await connection_row(owner_engine, connection_id)
    assert row.error_count == 0 and row.last_error is None and row.last_sync_at is not None
    # Another organisation's session changes nothing of it (RLS).
    [other] = await orgs(owner_engine, 1)
    async with runtime.session(other) as session:
        await record_sync(session, connection_id, ok=False, error="not yours")
    assert (await connection_row(owner_engine, connection_id)).error_count == 0
