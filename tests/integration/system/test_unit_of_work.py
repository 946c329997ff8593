"""The request's unit of work: committed before the answer leaves, and a commit that really fails
(a deferred constraint, a connection killed at COMMIT, a serialization failure) never answers 2xx.
After-commit work (jobs, counts) follows the outermost transaction, not its savepoints."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine, session_factory
from spotless.db.unit_of_work import collect_after_commit
from spotless.lib.jobs import enqueue
from spotless.lib.jobs.outbox import current_relay
from tests.support.factories import new_scheduled_run
from tests.support.identity import signup

# Test-only triggers on `client`, created and dropped around each test (as the owner). Each fires
# only for a client with a marker name, so nothing else in the test is affected.
_FUNCTIONS = {
    # Refuses at COMMIT (deferred), like memberships_keep_an_owner does for the last owner.
    "uow_test_refuse": """
        CREATE FUNCTION uow_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation', CONSTRAINT = 'uow_test_refused';
        END $$""",
    # Holds the COMMIT long enough for the test to kill the connection under it.
    "uow_test_slow": """
        CREATE FUNCTION uow_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$""",
    # A serialization failure the first time only (a sequence is not rolled back), or always.
    "uow_test_serialization": """
        CREATE FUNCTION uow_test_serialization() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
            IF nextval('uow_test_attempts') = 1 OR NEW.name LIKE '%always%' THEN
                RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN NULL;
        END $$""",
}
_TRIGGERS = [
    "CREATE CONSTRAINT TRIGGER uow_test_refuse AFTER INSERT ON client DEFERRABLE INITIALLY DEFERRED"
    " FOR EACH ROW WHEN (NEW.name = 'refuse at commit') EXECUTE FUNCTION uow_test_refuse()",
    "CREATE CONSTRAINT TRIGGER uow_test_slow AFTER INSERT ON client DEFERRABLE INITIALLY DEFERRED"
    " FOR EACH ROW WHEN (NEW.name = 'slow commit') EXECUTE FUNCTION uow_test_slow()",
    "CREATE CONSTRAINT TRIGGER uow_test_serialization_at_commit AFTER INSERT ON client"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.name LIKE 'conflict at commit%')"
    " EXECUTE FUNCTION uow_test_serialization()",
    "CREATE TRIGGER uow_test_serialization_in_handler AFTER INSERT ON client"
    " FOR EACH ROW WHEN (NEW.name LIKE 'conflict in handler%') EXECUTE FUNCTION uow_test_serialization()",
]


async def _drop(conn: Any) -> None:
    for name in (
        "uow_test_refuse",
        "uow_test_slow",
        "uow_test_serialization_at_commit",
        "uow_test_serialization_in_handler",
    ):
        await conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON client"))
    for name in _FUNCTIONS:
        await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
    await conn.execute(text("DROP SEQUENCE IF EXISTS uow_test_attempts"))


@pytest.fixture
async def triggers(owner_engine: AsyncEngine) -> AsyncIterator[None]:
    async with owner_engine.begin() as conn:
        await _drop(conn)
        await conn.execute(text("CREATE SEQUENCE uow_test_attempts"))
        for ddl in _FUNCTIONS.values():
            await conn.execute(text(ddl))
        for ddl in _TRIGGERS:
            await conn.execute(text(ddl))
    yield
    async with owner_engine.begin() as conn:
        await _drop(conn)


async def _clients_named(owner_engine: AsyncEngine, name: str) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM client WHERE name = :n"), {"n": name})).scalar_one()


async def _attempts(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT last_value FROM uow_test_attempts"))).scalar_one()


async def _commit_failures(client: Any, reason: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(f'db_commit_failures_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_commit_refused_by_a_deferred_constraint_answers_409_and_stores_nothing(
    client, owner_engine, triggers, caplog
):
    owner = await signup(client)
    before = await _commit_failures(client, "constraint")
    with caplog.at_level("ERROR", logger="spotless.db.unit_of_work"):
        response = await client.post("/v1/clients", json={"name": "refuse at commit"}, headers=owner.headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/conflict"
    assert response.json()["request_id"]
    assert await _clients_named(owner_engine, "refuse at commit") == 0
    assert await _commit_failures(client, "constraint") == before + 1
    assert any(r.levelname == "ERROR" and "commit failed" in r.getMessage() for r in caplog.records)
    # Everything else commits as before.
    fine = await client.post("/v1/clients", json={"name": "stored"}, headers=owner.headers)
    assert fine.status_code == 201 and await _clients_named(owner_engine, "stored") == 1


async def test_a_connection_lost_at_commit_answers_503_with_retry_after_and_stores_nothing(
    client, owner_engine, triggers
):
    owner = await signup(client)
    request = asyncio.create_task(client.post("/v1/clients", json={"name": "slow commit"}, headers=owner.headers))
    # Kill the API's connection while it runs COMMIT (held there by the deferred trigger's sleep).
    killed = False
    for _ in range(100):
        async with owner_engine.connect() as conn:
            killed = bool(
                (
                    await conn.execute(
                        text(
                            "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND query ILIKE 'COMMIT%' AND wait_event = 'PgSleep'"
                        )
                    )
                ).scalar()
            )
        if killed:
            break
        await asyncio.sleep(0.05)
    assert killed, "the commit never reached the trigger"
    response = await request
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/database-unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert await _clients_named(owner_engine, "slow commit") == 0
    # The pool recovers: the next request is served on a fresh connection.
    assert (await client.post("/v1/clients", json={"name": "after"}, headers=owner.headers)).status_code == 201


async def _terminate_api_connections(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND application_name = 'spotless-api'"
                        " AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar()
        )


@pytest.mark.parametrize("settle", [True, False], ids=["noticed", "unnoticed"])
async def test_pooled_connections_killed_between_requests_cost_no_error(client, owner_engine, settle):
    """No pre-ping: a pooled connection the server ended (restart, failover, idle timeout) fails at
    its transaction's BEGIN, is dropped with the pool's others, and the request runs once more on a
    fresh connection; nothing had been committed, so nothing happens twice. `unnoticed`: the
    request comes before the client has even read the connection's end."""
    owner = await signup(client)
    assert (await client.post("/v1/clients", json={"name": "before"}, headers=owner.headers)).status_code == 201
    assert (await client.get("/v1/clients", headers=owner.headers)).status_code == 200
    assert await _terminate_api_connections(owner_engine) >= 1
    if settle:
        await asyncio.sleep(0.2)
    listed = await client.get("/v1/clients", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    assert await _terminate_api_connections(owner_engine) >= 1
    if settle:
        await asyncio.sleep(0.2)
    made = await client.post("/v1/clients", json={"name": "after"}, headers=owner.headers)
    assert made.status_code == 201, made.text
    assert await _clients_named(owner_engine, "after") == 1


async def test_readiness_and_the_session_fallback_survive_killed_pooled_connections(app, client, owner_engine, redis):
    """Their single statements outside a transaction ask once more on a fresh connection."""
    owner = await signup(client)
    assert (await client.get("/readyz")).status_code == 200
    assert await _terminate_api_connections(owner_engine) >= 1
    await asyncio.sleep(0.2)
    app.state.readiness._answered_at = 0.0  # the next probe runs a round
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    await redis.flushdb()  # no session in Redis: the check reads Postgres (auth_session_state)
    assert (await client.get("/v1/clients", headers=owner.headers)).status_code == 200
    assert await _terminate_api_connections(owner_engine) >= 1
    await asyncio.sleep(0.2)
    await redis.flushdb()
    listed = await client.get("/v1/clients", headers=owner.headers)
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("where", ["at commit", "in handler"])
async def test_a_serialization_failure_reruns_the_request_once(client, owner_engine, triggers, where):
    owner = await signup(client)
    name = f"conflict {where}"
    response = await client.post("/v1/clients", json={"name": name}, headers=owner.headers)
    assert response.status_code == 201, response.text
    assert await _attempts(owner_engine) == 2  # failed once, then ran again on a fresh transaction
    assert await _clients_named(owner_engine, name) == 1
    assert response.json()["name"] == name


@pytest.mark.parametrize("where", ["at commit", "in handler"])
async def test_a_second_serialization_failure_is_a_409(client, owner_engine, triggers, where):
    owner = await signup(client)
    name = f"conflict {where} always"
    response = await client.post("/v1/clients", json={"name": name}, headers=owner.headers)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/transaction-conflict"
    assert await _attempts(owner_engine) == 2  # retried exactly once
    assert await _clients_named(owner_engine, name) == 0


@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "wrapped-by-a-repository"])
async def test_a_statement_timeout_is_a_503_with_retry_after(settings, wrapped):
    from advanced_alchemy.exceptions import RepositoryError
    from litestar import get
    from sqlalchemy.ext.asyncio import AsyncSession

    from spotless.app import create_app
    from tests.support.client import app_client

    # A stand-in route only for the database's answer (a real route cannot be made slow on demand).
    @get("/test/slow", opt={"public": True})
    async def slow(db_session: AsyncSession) -> dict[str, str]:
        await db_session.execute(text("SET LOCAL statement_timeout = 50"))
        try:
            await db_session.execute(text("SELECT pg_sleep(1)"))
        except DBAPIError as exc:
            if wrapped:  # what advanced-alchemy's repositories raise
                raise RepositoryError(detail="An exception occurred") from exc
            raise
        return {}

    app = create_app(settings)
    app.register(slow)
    async with app_client(app) as client:
        response = await client.get("/test/slow")
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/database-timeout"
    assert int(response.headers["retry-after"]) >= 1


async def test_a_lock_not_available_is_a_409(settings, owner_engine):
    from litestar import get
    from sqlalchemy.ext.asyncio import AsyncSession

    from spotless.app import create_app
    from tests.support.client import app_client

    @get("/test/nowait", opt={"public": True})
    async def nowait(db_session: AsyncSession) -> dict[str, str]:
        await db_session.execute(text("LOCK TABLE scheduled_runs IN ACCESS EXCLUSIVE MODE NOWAIT"))
        return {}

    app = create_app(settings)
    app.register(nowait)
    async with owner_engine.connect() as holder, app_client(app) as client:
        await holder.execute(text("LOCK TABLE scheduled_runs IN ACCESS SHARE MODE"))
        response = await client.get("/test/nowait")
        await holder.rollback()
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/resource-busy"


# --- after-commit work follows the outermost transaction --------------------------------------


# A batched after-commit hook like the one that used to count `bookings_total` here (that count
# now comes from scheduling's events): what these tests prove is the hooks' scoping.
_COUNTED: list[str] = []


def _count_committed(actions: list[str]) -> None:
    _COUNTED.extend(actions)


def count_after_commit(session: Any, action: str) -> None:
    collect_after_commit(session, _count_committed, action)


def _bookings_created() -> float:
    return float(_COUNTED.count("created"))


async def _sent_at(owner_engine: AsyncEngine, job_id: uuid.UUID) -> Any:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT sent_at FROM job_outbox WHERE id = :id"), {"id": job_id})).scalar()


async def test_a_rolled_back_savepoint_keeps_the_transactions_job_and_count(client, settings, owner_engine):
    """One conflicting occurrence (a savepoint rolled back) must not drop the rest of the work."""
    relay = current_relay()
    assert relay is not None  # the app's lifespan (client fixture) installed it
    engine = create_engine(settings.database, application_name="uow-savepoint-test")
    try:
        before = _bookings_created()
        async with session_factory(engine)() as session:
            job_id = enqueue(session, "identity.sync_sessions", str(uuid.uuid4()), str(uuid.uuid4()))
            count_after_commit(session, "created")
            with pytest.raises(DBAPIError):
                async with session.begin_nested():
                    await session.execute(text("SELECT 1 / 0"))
            await session.commit()
        await relay.drain()
        assert await _sent_at(owner_engine, job_id) is not None  # handed to the broker at commit
        assert _bookings_created() == before + 1
    finally:
        await engine.dispose()


async def test_work_inside_a_released_savepoint_waits_for_the_outer_commit(client, settings, owner_engine):
    relay = current_relay()
    assert relay is not None
    engine = create_engine(settings.database, application_name="uow-savepoint-test")
    try:
        before = _bookings_created()
        async with session_factory(engine)() as session:
            async with session.begin_nested():
                count_after_commit(session, "created")
                enqueue(session, "identity.sync_sessions", str(uuid.uuid4()), str(uuid.uuid4()))
            assert _bookings_created() == before  # released is not committed
            with pytest.raises(DBAPIError):
                async with session.begin_nested():
                    count_after_commit(session, "created")  # its own savepoint fails: dropped
                    await session.execute(text("SELECT 1 / 0"))
            await session.rollback()
        await relay.drain()
        assert _bookings_created() == before  # the outer transaction rolled back: nothing counted
        async with owner_engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM job_outbox"))).scalar_one() == 0

        async with session_factory(engine)() as session:
            async with session.begin_nested():
                count_after_commit(session, "created")
            with pytest.raises(DBAPIError):
                async with session.begin_nested():
                    count_after_commit(session, "created")
                    await session.execute(text("SELECT 1 / 0"))
            await session.commit()
        assert _bookings_created() == before + 1  # the released one only
    finally:
        await engine.dispose()


# --- what it costs -----------------------------------------------------------------------------


async def test_one_commit_per_request_and_none_without_a_transaction(app, client):
    """The unit of work adds no round trip: one COMMIT for a request that used the database (as
    the old after-send commit did), none for one that did not, a ROLLBACK only for an error."""
    from sqlalchemy import event

    owner = await signup(client)
    calls: list[str] = []
    engine = app.state.engine.sync_engine

    def on_commit(conn: Any) -> None:
        calls.append("commit")

    def on_rollback(conn: Any) -> None:
        calls.append("rollback")

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    try:
        assert (await client.post("/v1/clients", json={"name": "one"}, headers=owner.headers)).status_code == 201
        assert calls == ["commit"]
        calls.clear()
        assert (await client.get("/healthz")).status_code == 200
        assert calls == []
        missing = await client.get(f"/v1/clients/{uuid.uuid4()}", headers=owner.headers)
        assert missing.status_code == 404
        assert calls == ["rollback"]
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "rollback", on_rollback)


async def test_the_idle_in_transaction_timeout_at_commit_is_a_503_and_stores_nothing(settings, owner_engine):
    """A handler that sat on its open transaction past the server's idle timeout lost it: the
    commit fails and the client is told so (the old after-send commit answered 200)."""
    from litestar import post
    from sqlalchemy.ext.asyncio import AsyncSession

    from spotless.app import create_app
    from tests.support.client import app_client

    marker = f"idle-{uuid.uuid4().hex[:8]}"

    # A stand-in route: no real route can be told to sit idle inside its transaction.
    @post("/test/idle", opt={"public": True}, status_code=201)
    async def idle(db_session: AsyncSession) -> dict[str, str]:
        await db_session.execute(text("SET LOCAL idle_in_transaction_session_timeout = 100"))
        await new_scheduled_run(db_session, marker, datetime.now(UTC))
        await asyncio.sleep(0.5)  # the server ends the session meanwhile
        return {}

    app = create_app(settings)
    app.register(idle)
    async with app_client(app) as client:
        response = await client.post("/test/idle")
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/database-unavailable"
    assert int(response.headers["retry-after"]) >= 1
    async with owner_engine.connect() as conn:
        stored = await conn.execute(text("SELECT count(*) FROM scheduled_runs WHERE job_name = :j"), {"j": marker})
        assert stored.scalar_one() == 0


async def test_the_requests_commit_writes_its_jobs_but_not_those_of_a_rolled_back_savepoint(
    client, settings, owner_engine
):
    """`commit()` (the request's) writes the new outbox rows itself, in one statement: a job
    enqueued in a savepoint that rolled back is not among them; the others are stored and sent."""
    from spotless.db.unit_of_work import commit

    relay = current_relay()
    assert relay is not None
    engine = create_engine(settings.database, application_name="uow-outbox-write-test")
    try:
        async with session_factory(engine)() as session:
            kept = [enqueue(session, "identity.sync_sessions", str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(2)]
            with pytest.raises(DBAPIError):
                async with session.begin_nested():
                    dropped = enqueue(session, "identity.sync_sessions", str(uuid.uuid4()), str(uuid.uuid4()))
                    await session.execute(text("SELECT 1 / 0"))
            await commit(session)
            assert not session.new  # nothing left for a flush to write twice
        await relay.drain()
        async with owner_engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, actor_name, sent_at FROM job_outbox"))).all()
        assert sorted(r.id for r in rows) == sorted(kept) and dropped not in {r.id for r in rows}
        assert all(r.actor_name == "identity.sync_sessions" and r.sent_at is not None for r in rows)
    finally:
        await engine.dispose()
