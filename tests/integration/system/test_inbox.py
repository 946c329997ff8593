"""The inbox on real PostgreSQL and Redis: duplicated, reordered, failed and replayed deliveries,
concurrent processing, and a rolled-back receipt.

The handlers below are registered for test sources in this module: they test the mechanism (the
integrations register theirs in their own `actors.py`). `FAKE_SOURCE` is the sender's current
state, which a handler re-reads as a real one would re-fetch the object from Stripe or QuickBooks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spotless.db.engine import apply_org_now
from spotless.domain import registry
from spotless.lib.inbox import PROCESS_JOB, HandlerOutcome, ReceivedEvent, inbox_handler, process_inbox_event, receive
from spotless.lib.jobs import enqueue
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import test_env as child_env
from tests.support.processes import REPO

registry.import_jobs()

CALLS: list[tuple[str, str]] = []  # (source, external_id) of every handler run that got to its end
FAKE_SOURCE: dict[str, dict[str, Any]] = {}  # the sender's objects as they are now
MIRROR: dict[str, dict[str, Any]] = {}  # our copy, written by the handlers
FAILING = {"on": False}
GATE: dict[str, asyncio.Event] = {}
ACCOUNTS: dict[str, UUID] = {}  # the integration's mapping: sender account -> organisation
SEEN: dict[str, Any] = {}
TAKEN: set[UUID] = set()  # outbox rows already run by `_run_jobs`


@inbox_handler("test_counter")
async def _count(session: AsyncSession, event: ReceivedEvent) -> None:
    CALLS.append((event.source, event.external_id))


@inbox_handler("test_refetch")
async def _refetch(session: AsyncSession, event: ReceivedEvent) -> None:
    """Never trusts the delivered snapshot: re-reads the object, so order does not matter."""
    object_id = event.payload["data"]["object"]["id"]
    current = FAKE_SOURCE.get(object_id)
    if current is None:
        return  # deleted at the source since: nothing to mirror
    MIRROR[object_id] = dict(current)
    CALLS.append((event.source, event.external_id))


@inbox_handler("test_trusting")
async def _trusting(session: AsyncSession, event: ReceivedEvent) -> None:
    """What the contract forbids: applying the delivered snapshot (shows why re-reading matters)."""
    obj = event.payload["data"]["object"]
    MIRROR[obj["id"]] = dict(obj)


@inbox_handler("test_flaky")
async def _flaky(session: AsyncSession, event: ReceivedEvent) -> None:
    # A write made before the failure: it must roll back with the handler.
    enqueue(session, "system.record", f"side-effect:{event.external_id}")
    if FAILING["on"]:
        raise RuntimeError("source unavailable (503)")
    CALLS.append((event.source, event.external_id))


@inbox_handler("test_slow")
async def _slow(session: AsyncSession, event: ReceivedEvent) -> None:
    GATE["entered"].set()
    await GATE["release"].wait()
    CALLS.append((event.source, event.external_id))


@inbox_handler("test_tenant")
async def _tenant(session: AsyncSession, event: ReceivedEvent) -> HandlerOutcome | None:
    """Maps the sender's account to an organisation, scopes the transaction, then reads tenant rows."""
    org_id = ACCOUNTS.get(event.payload["account"])
    if org_id is None:
        return "ignored"  # an account we do not know: answered already, nothing to retry
    await apply_org_now(session, org_id)
    members = await session.scalar(text("SELECT count(*) FROM memberships"))
    SEEN[event.external_id] = members
    return None


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    CALLS.clear()
    FAKE_SOURCE.clear()
    MIRROR.clear()
    FAILING["on"] = False
    GATE.clear()
    TAKEN.clear()
    ACCOUNTS.clear()
    SEEN.clear()


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(settings, application_name="inbox-test")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
def sessionmaker(runtime: JobRuntime) -> async_sessionmaker[AsyncSession]:
    return runtime.sessionmaker


async def _deliver(
    sessionmaker: async_sessionmaker[AsyncSession], source: str, external_id: str, payload: dict[str, Any]
) -> bool:
    """What a webhook endpoint does after verifying: receive in its own transaction and commit."""
    async with sessionmaker() as session, session.begin():
        received = await receive(session, source, external_id, payload, event_type=payload.get("type"))
    return not received.duplicate


async def _take_jobs(owner_engine: AsyncEngine) -> list[str]:
    """The processing jobs the outbox holds that this test has not run yet, oldest first (as the
    broker would deliver them)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, args FROM job_outbox WHERE actor_name = :job ORDER BY id"), {"job": PROCESS_JOB}
        )
        fresh = [(row_id, args) for row_id, args in rows.all() if row_id not in TAKEN]
    TAKEN.update(row_id for row_id, _ in fresh)
    return [args[0] for _, args in fresh]


async def _run_jobs(owner_engine: AsyncEngine) -> int:
    """Run every processing job waiting in the outbox, as the worker would (errors raised to
    Dramatiq are swallowed here: the test looks at the event rows)."""
    ran = 0
    for event_id in await _take_jobs(owner_engine):
        with contextlib.suppress(Exception):
            await process_inbox_event(event_id)
        ran += 1
    return ran


async def _event(owner_engine: AsyncEngine, source: str, external_id: str) -> dict[str, Any]:
    async with owner_engine.connect() as conn:
        row = await conn.execute(
            text(
                "SELECT id, handled_at, outcome, attempts, last_error FROM inbox_events"
                " WHERE source = :s AND external_id = :e"
            ),
            {"s": source, "e": external_id},
        )
        return dict(row.one()._mapping)


async def _count(owner_engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(sql), params))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`just inbox ...` as an operator runs it (`python -m workers.inbox`), on the test database."""
    env = {**os.environ, **child_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    return subprocess.run(
        [sys.executable, "-m", "workers.inbox", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


async def test_duplicated_deliveries_store_one_row_and_process_once(sessionmaker, owner_engine):
    payload = {"id": "evt_1", "type": "thing.created", "data": {"object": {"id": "obj_1"}}}
    first = await _deliver(sessionmaker, "test_counter", "evt_1", payload)
    again = await _deliver(sessionmaker, "test_counter", "evt_1", payload)
    # A burst of the same delivery at the same moment (the sender retrying while we were slow).
    burst = await asyncio.gather(*(_deliver(sessionmaker, "test_counter", "evt_1", payload) for _ in range(4)))
    assert (first, again, burst) == (True, False, [False] * 4)
    assert await _count(owner_engine, "SELECT count(*) FROM inbox_events") == 1
    assert await _count(owner_engine, "SELECT count(*) FROM job_outbox WHERE actor_name = :j", j=PROCESS_JOB) == 1

    assert await _run_jobs(owner_engine) == 1
    # The broker delivering the same message again (at least once) changes nothing.
    event = await _event(owner_engine, "test_counter", "evt_1")
    await process_inbox_event(str(event["id"]))
    assert CALLS == [("test_counter", "evt_1")]
    event = await _event(owner_engine, "test_counter", "evt_1")
    assert event["handled_at"] is not None
    assert (event["outcome"], event["attempts"], event["last_error"]) == ("processed", 1, None)


async def test_the_same_external_id_from_two_sources_is_two_events(sessionmaker, owner_engine):
    assert await _deliver(sessionmaker, "test_counter", "42", {"n": 1})
    assert await _deliver(sessionmaker, "test_refetch", "42", {"data": {"object": {"id": "gone"}}})
    assert await _count(owner_engine, "SELECT count(*) FROM inbox_events") == 2


async def test_reordered_deliveries_end_in_the_sources_current_state(sessionmaker, owner_engine):
    """`updated` arrives before `created`: the handler that re-reads ends right; one that applied
    the delivered snapshots would end on the older state."""
    created = {"id": "pi_1", "status": "requires_payment", "amount": 5000}
    updated = {"id": "pi_1", "status": "succeeded", "amount": 5000}
    FAKE_SOURCE["pi_1"] = dict(updated)  # both happened at the source before we processed anything

    for source in ("test_refetch", "test_trusting"):
        await _deliver(
            sessionmaker, source, "evt_upd", {"type": "pi.updated", "data": {"object": updated}}
        )  # arrives first
        await _deliver(sessionmaker, source, "evt_new", {"type": "pi.created", "data": {"object": created}})
        await _run_jobs(owner_engine)
        assert (await _event(owner_engine, source, "evt_upd"))["handled_at"] is not None
        assert (await _event(owner_engine, source, "evt_new"))["handled_at"] is not None
        if source == "test_refetch":
            assert MIRROR["pi_1"]["status"] == "succeeded"
            MIRROR.clear()
        else:
            assert MIRROR["pi_1"]["status"] == "requires_payment"  # wrong: why the contract says re-read


async def test_a_failed_event_stays_visible_and_replay_processes_it_once_fixed(sessionmaker, owner_engine):
    secret = "sk_live_do_not_print_me"
    FAILING["on"] = True
    await _deliver(sessionmaker, "test_flaky", "evt_f", {"type": "x.failed", "card": {"token": secret}})
    await _run_jobs(owner_engine)
    event = await _event(owner_engine, "test_flaky", "evt_f")
    assert event["handled_at"] is None
    assert event["attempts"] == 1
    assert event["last_error"] == "RuntimeError: source unavailable (503)"
    # The handler's own write (a job it enqueued) rolled back with it.
    assert await _count(owner_engine, "SELECT count(*) FROM job_outbox WHERE args::text LIKE '%side-effect%'") == 0

    # Dramatiq retries it (the job raised): still failing, the attempts add up.
    with pytest.raises(RuntimeError):
        await process_inbox_event(str(event["id"]))
    assert (await _event(owner_engine, "test_flaky", "evt_f"))["attempts"] == 2

    # `just inbox` shows it as failed with its error, never the payload.
    listing = await asyncio.to_thread(_cli)
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if "evt_f" in x)
    assert "failed" in line and "test_flaky" in line and "RuntimeError: source unavailable (503)" in line
    assert "\t2\t" in line  # attempts
    assert secret not in listing.stdout + listing.stderr

    # Fixed (the source is back): `just inbox replay` (no id: every unhandled event) processes it once.
    FAILING["on"] = False
    replayed = await asyncio.to_thread(_cli, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1" in replayed.stdout
    await _run_jobs(owner_engine)
    # The dead letter replayed as well, or a late retry: the event is handled already.
    await process_inbox_event(str(event["id"]))
    assert CALLS == [("test_flaky", "evt_f")]
    event = await _event(owner_engine, "test_flaky", "evt_f")
    assert event["handled_at"] is not None and event["last_error"] is None and event["attempts"] == 3
    assert await _count(owner_engine, "SELECT count(*) FROM job_outbox WHERE args::text LIKE '%side-effect%'") == 1

    listing = await asyncio.to_thread(_cli)
    assert "evt_f" not in listing.stdout
    again = await asyncio.to_thread(_cli, "replay", str(event["id"]))
    assert again.returncode == 1 and "replayed 0" in again.stdout and str(event["id"]) in again.stderr


async def test_replay_by_id_enqueues_only_those(sessionmaker, owner_engine):
    FAILING["on"] = True
    for n in (1, 2):
        await _deliver(sessionmaker, "test_flaky", f"evt_{n}", {"n": n})
    await _run_jobs(owner_engine)
    FAILING["on"] = False
    one = await _event(owner_engine, "test_flaky", "evt_1")
    result = await asyncio.to_thread(_cli, "replay", str(one["id"]))
    assert result.returncode == 0 and "replayed 1" in result.stdout, result.stderr
    assert await _take_jobs(owner_engine) == [str(one["id"])]


async def test_concurrent_processing_of_one_event_runs_the_handler_once(sessionmaker, owner_engine):
    GATE["entered"], GATE["release"] = asyncio.Event(), asyncio.Event()
    await _deliver(sessionmaker, "test_slow", "evt_s", {"n": 1})
    [event_id] = await _take_jobs(owner_engine)
    first = asyncio.create_task(process_inbox_event(event_id))
    await asyncio.wait_for(GATE["entered"].wait(), 10)
    # Two more deliveries of the same job while the first holds the row: they return at once.
    await asyncio.wait_for(asyncio.gather(process_inbox_event(event_id), process_inbox_event(event_id)), 5)
    GATE["release"].set()
    await first
    await process_inbox_event(event_id)
    assert CALLS == [("test_slow", "evt_s")]
    assert (await _event(owner_engine, "test_slow", "evt_s"))["attempts"] == 1


async def test_a_rolled_back_receipt_leaves_no_event_and_no_job(sessionmaker, owner_engine):
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            assert not (await receive(session, "test_counter", "evt_rb", {"n": 1})).duplicate
            raise RuntimeError("the endpoint failed after receiving")
    assert await _count(owner_engine, "SELECT count(*) FROM inbox_events") == 0
    assert await _count(owner_engine, "SELECT count(*) FROM job_outbox") == 0
    # The sender's retry is then a new event, processed normally.
    assert await _deliver(sessionmaker, "test_counter", "evt_rb", {"n": 1})
    await _run_jobs(owner_engine)
    assert CALLS == [("test_counter", "evt_rb")]


async def test_received_event_reaches_a_real_worker_which_records_a_missing_handler(
    settings, sessionmaker, owner_engine, worker_process
):
    """End to end through the relay, Redis and a `dramatiq workers.worker` process. That process
    has no handler for this test source: the event is kept, failed, with the reason."""
    broker = build_broker(settings)
    install_relay(OutboxRelay(sessionmaker, broker))
    try:
        await _deliver(sessionmaker, "test_nobody", "evt_w", {"n": 1})
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            event = await _event(owner_engine, "test_nobody", "evt_w")
            if event["last_error"]:
                break
            await asyncio.sleep(0.2)
    finally:
        install_relay(None)
        broker.close()
    assert event["last_error"] == "NoInboxHandler: no inbox handler registered for source 'test_nobody'", (
        worker_process.log()
    )
    assert event["handled_at"] is None


async def test_the_database_refuses_a_malformed_source(sessionmaker):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        await _deliver(sessionmaker, "Stripe Live", "evt", {})


def test_the_processing_job_is_declared_with_bounded_retries():
    from spotless.lib.jobs.registry import get_job

    spec = get_job(PROCESS_JOB)
    assert 0 < spec.max_retries <= 20
    assert spec.max_age_ms is not None and spec.max_age_ms > 24 * 3_600_000  # outlives the retries


async def test_acknowledge_answers_2xx_only_for_a_stored_event(settings, owner_engine):
    """The helper a webhook endpoint ends with, inside the app's unit of work. The route is this
    test's own (the real endpoints come with the integrations): a test of the helper."""
    from litestar import Request, post

    from spotless.app import create_app
    from spotless.lib.inbox import acknowledge
    from tests.support.client import app_client

    @post("/test/inbox/{external_id:str}", opt={"public": True, "rate_limit": "exempt"})
    async def hook(request: Request[Any, Any, Any], db_session: AsyncSession, external_id: str) -> Any:
        body = await request.json()  # a real endpoint verifies the raw body's signature first
        response = await acknowledge(db_session, "test_counter", external_id, body, event_type=body.get("type"))
        if request.query_params.get("lose_connection"):
            # The connection dies before the commit: the answer must not be a 2xx.
            await db_session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '10ms'"))
            await asyncio.sleep(0.3)
        return response

    app = create_app(settings)
    app.register(hook)
    async with app_client(app) as client:
        first = await client.post("/test/inbox/evt_a", json={"type": "thing.created"})
        again = await client.post("/test/inbox/evt_a", json={"type": "thing.created"})
        lost = await client.post("/test/inbox/evt_b?lose_connection=1", json={"type": "thing.created"})
    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    assert lost.status_code >= 500, lost.text  # the sender retries it
    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT external_id FROM inbox_events"))).scalars().all()
    assert stored == ["evt_a"]
    assert await _count(owner_engine, "SELECT count(*) FROM job_outbox WHERE actor_name = :j", j=PROCESS_JOB) == 1


async def test_a_handler_scopes_its_writes_to_the_organisation_it_resolves(client, sessionmaker, owner_engine):
    from tests.support.identity import signup

    owner = await signup(client)
    ACCOUNTS["acct_known"] = owner.org_id
    await _deliver(sessionmaker, "test_tenant", "evt_known", {"account": "acct_known"})
    await _deliver(sessionmaker, "test_tenant", "evt_unknown", {"account": "acct_other"})
    await _run_jobs(owner_engine)
    # Under RLS the job's session sees the organisation's rows only once scoped to it.
    assert SEEN == {"evt_known": 1}
    known = await _event(owner_engine, "test_tenant", "evt_known")
    unknown = await _event(owner_engine, "test_tenant", "evt_unknown")
    assert (known["outcome"], unknown["outcome"]) == ("processed", "ignored")
    assert unknown["handled_at"] is not None and unknown["last_error"] is None  # not retried, not listed
    listing = await asyncio.to_thread(_cli, "list")
    assert "evt_unknown" not in listing.stdout


async def test_an_event_with_a_nul_character_is_stored_not_refused(sessionmaker, owner_engine):
    """JSONB refuses U+0000; refusing the event would make the sender retry it for days."""
    assert await _deliver(sessionmaker, "test_counter", "evt_nul", {"note": "a\x00b", "list": ["\x00"]})
    async with owner_engine.connect() as conn:
        payload = await conn.scalar(text("SELECT payload FROM inbox_events"))
    assert payload == {"note": "a\ufffdb", "list": ["\ufffd"]}


async def test_a_run_cut_short_by_the_time_limit_is_recorded_and_retried(sessionmaker, owner_engine):
    GATE["entered"], GATE["release"] = asyncio.Event(), asyncio.Event()
    await _deliver(sessionmaker, "test_slow", "evt_t", {"n": 1})
    [event_id] = await _take_jobs(owner_engine)
    run = asyncio.create_task(process_inbox_event(event_id))
    await asyncio.wait_for(GATE["entered"].wait(), 10)
    run.cancel()  # what Dramatiq's TimeLimit does to an async actor
    with pytest.raises(asyncio.CancelledError):
        await run
    event = await _event(owner_engine, "test_slow", "evt_t")
    assert (event["handled_at"], event["attempts"]) == (None, 1)
    assert event["last_error"] == "TimeoutError: cancelled: time limit or shutdown"
    GATE["release"].set()
    await process_inbox_event(event_id)  # the retry
    assert CALLS == [("test_slow", "evt_t")]


async def test_receiving_costs_one_statement_and_the_outbox_row_at_commit(runtime, sessionmaker):
    """The endpoint answers fast whatever processing does: receive is one INSERT ... RETURNING;
    the commit adds the job's outbox row (none for a duplicate)."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0] + " " + statement.split()[2])

    sync_engine = runtime.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        for duplicate in (False, True):
            async with sessionmaker() as session, session.begin():
                await session.connection()  # the transaction's own setup is not receive's cost
                statements.clear()
                await receive(session, "test_counter", "evt_cost", {"n": 1})
                during = list(statements)
            assert during == ["INSERT inbox_events"]
            at_commit = list(statements[1:])
            assert at_commit == ([] if duplicate else ["INSERT job_outbox"])
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
