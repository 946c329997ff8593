"""The jobs platform end to end: outbox durability, the real broker and a real worker, the scheduler."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.lib.jobs import enqueue
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.jobs.registry import discover_schedule
from spotless.lib.jobs.scheduler import Scheduler
from spotless.settings import Settings
from tests.conftest import make_settings

registry.import_jobs()


async def _records(redis: Redis, settings: Settings) -> list[str]:
    return [m.decode() for m in await redis.lrange(f"{settings.jobs.namespace}:records", 0, -1)]


async def _wait_for_record(redis: Redis, settings: Settings, marker: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in await _records(redis, settings):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
async def sessionmaker(settings: Settings):
    engine = create_engine(settings.database, application_name="test-jobs")
    yield session_factory(engine)
    await engine.dispose()


async def _pending(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL")))


async def test_async_job_runs_end_to_end_through_broker_and_worker(
    settings, sessionmaker, redis, worker_process, owner_engine
):
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        async with sessionmaker() as session, session.begin():
            enqueue(session, "system.record", "committed-1")
        await relay.drain()
        assert await _wait_for_record(redis, settings, "committed-1"), worker_process.log()
        assert await _pending(owner_engine) == 0
    finally:
        install_relay(None)
        broker.close()
    # The worker's per-actor counters reach the API's /metrics (shared multiprocess registry).
    from spotless.app import create_app
    from tests.support.client import app_client

    async with app_client(create_app(settings)) as client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = (await client.get("/metrics")).text
            if 'actor_name="system.record"' in metrics:
                break
            await asyncio.sleep(0.2)
    assert 'dramatiq_messages_total{actor_name="system.record",outcome="ok",queue_name="default"}' in metrics
    assert "dramatiq_message_duration_seconds_bucket" in metrics


async def test_job_from_rolled_back_transaction_never_runs(settings, sessionmaker, redis, worker_process, owner_engine):
    broker = build_broker(settings)
    relay = OutboxRelay(sessionmaker, broker)
    install_relay(relay)
    try:
        with pytest.raises(RuntimeError):
            async with sessionmaker() as session, session.begin():
                enqueue(session, "system.record", "rolled-back")
                raise RuntimeError("business rule failed after the job was requested")
        async with sessionmaker() as session, session.begin():
            enqueue(session, "system.record", "sentinel-after")
        await relay.drain()
        # The sentinel was requested later and has run: the rolled-back job would have run by now.
        assert await _wait_for_record(redis, settings, "sentinel-after"), worker_process.log()
        assert "rolled-back" not in await _records(redis, settings)
        async with owner_engine.connect() as conn:
            rows = await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE args::text LIKE '%rolled-back%'"))
        assert rows == 0
    finally:
        install_relay(None)
        broker.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_committed_job_survives_redis_down_at_commit_and_runs_after(
    settings, sessionmaker, redis, worker_process, owner_engine
):
    # At commit time the broker is unreachable (Redis down from the API's point of view).
    dead_broker = build_broker(make_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"))
    relay = OutboxRelay(sessionmaker, dead_broker)
    install_relay(relay)
    try:
        async with sessionmaker() as session, session.begin():
            enqueue(session, "system.record", "survived-outage")
        await relay.drain()
    finally:
        install_relay(None)
        dead_broker.close()
    assert await _pending(owner_engine) == 1
    async with owner_engine.connect() as conn:
        error = await conn.scalar(text("SELECT last_error FROM job_outbox"))
    assert error  # the failed hand-over is recorded, not swallowed
    assert "survived-outage" not in await _records(redis, settings)

    # Redis is back: the sweep (the scheduler runs it every second) delivers the job.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE job_outbox SET available_at = now()"))  # skip the retry backoff
    live = build_broker(settings)
    try:
        delivered = await OutboxRelay(sessionmaker, live).relay()
    finally:
        live.close()
    assert delivered == 1
    assert await _wait_for_record(redis, settings, "survived-outage"), worker_process.log()
    assert await _pending(owner_engine) == 0


async def test_concurrent_relays_hand_each_job_over_once(settings, sessionmaker, owner_engine, redis):
    async with sessionmaker() as session, session.begin():
        for i in range(60):
            enqueue(session, "system.noop", f"n{i}")
    broker = build_broker(settings)
    try:
        relays = [OutboxRelay(sessionmaker, broker) for _ in range(4)]
        delivered = await asyncio.gather(*(r.relay(limit=20) for r in relays), *(r.relay(limit=20) for r in relays))
        assert sum(delivered) == 60
        queued = await redis.hlen(f"{settings.jobs.namespace}:default.msgs")
        assert queued == 60
    finally:
        broker.close()


async def test_two_schedulers_never_fire_the_same_slot(settings, redis):
    schedule = discover_schedule(make_settings(JOB_TICK_INTERVAL_SECONDS="30"))
    broker = build_broker(settings)
    try:
        a = Scheduler(redis, broker, settings.jobs.namespace, "node-a", schedule)
        b = Scheduler(Redis.from_url(settings.redis.url), broker, settings.jobs.namespace, "node-b", schedule)
        now = datetime.now(UTC)
        fired = await asyncio.gather(*(s.tick(now) for s in (a, b, a, b)))
        ticks = [slot for batch in fired for (job, slot) in batch if job == "system.tick"]
        assert len(ticks) == 1
        queued = await redis.hlen(f"{settings.jobs.namespace}:default.msgs")
        assert queued == len({job for batch in fired for job, _ in batch})
        await b.redis.aclose()
    finally:
        broker.close()


def test_schedules_are_discovered_from_the_job_declarations():
    """One place says when a job runs: its declaration (fixed, or from the settings)."""
    settings = make_settings(JOB_TICK_INTERVAL_SECONDS="7", SCHEDULING_MATERIALISE_INTERVAL_SECONDS="120")
    assert {(p.job_name, p.every_seconds) for p in discover_schedule(settings)} == {
        ("billing.followup_due", 600),
        ("billing.invoice_period", 3600),
        ("billing.mark_overdue", 3600),
        ("billing.recover_stripe_events", 1800),
        ("exports.sweep", 300),
        ("identity.purge_expired", 3600),
        ("integrations.gcal_sync", 60),
        ("integrations.qbo_sync", 60),
        ("messaging.digest_daily", 900),
        ("messaging.digest_monthly", 900),
        ("messaging.digest_weekly", 900),
        ("messaging.report_dead_letters", 3600),
        ("messaging.send_agendas", 300),
        ("messaging.send_reminders", 300),
        ("retention.apply", 3600),
        ("scheduling.materialise_series", 120),
        ("storage.janitor", 3600),
        ("system.tick", 7),
        ("webhooks.retry_due", 10),
    }


def test_a_local_time_schedule_is_declared_but_not_run_until_a_job_needs_it():
    from datetime import time

    from spotless.lib.jobs.registry import JOBS, daily, job

    with pytest.raises(ValueError, match="must take `slot`"):
        job("test.no_slot", every=timedelta(minutes=5))(lambda: None)

    @job("test.nightly", at=daily(time(2, 0)))
    async def nightly(slot: str | None = None) -> None:
        return None

    try:
        with pytest.raises(NotImplementedError, match=r"test\.nightly"):
            discover_schedule(make_settings())
    finally:
        JOBS.pop("test.nightly")


async def test_tick_writes_heartbeats_once_per_slot_and_readyz_sees_it(settings, owner_engine, redis):
    from spotless.app import create_app
    from spotless.domain.system.actors import tick
    from spotless.lib.jobs.runtime import build_runtime, set_runtime
    from tests.support.client import app_client

    runtime = build_runtime(settings)
    set_runtime(runtime)
    try:
        slot = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
        await tick(slot=slot)
        await tick(slot=slot)  # a redelivery of the same slot does nothing
        async with owner_engine.connect() as conn:
            runs = await conn.scalar(text("SELECT count(*) FROM scheduled_runs WHERE job_name = 'system.tick'"))
            beat = (await conn.execute(text("SELECT runner_id, last_beat_at FROM job_heartbeats"))).one()
        assert runs == 1
        assert beat.runner_id == runtime.runner_id
        assert await redis.exists(f"{settings.jobs.namespace}:heartbeat:jobs-runner")
    finally:
        await runtime.close()
        set_runtime(None)
    app = create_app(make_settings(JOB_HEARTBEAT_REQUIRED="true"))
    async with app_client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text


async def test_scheduler_process_drives_worker_and_heartbeat(settings, owner_engine, redis):
    """The whole path readiness proves: scheduler -> broker -> worker -> database."""
    from tests.conftest import test_env
    from tests.support import processes

    env = test_env(JOB_TICK_INTERVAL_SECONDS="2")
    worker = processes.start_worker(env)
    scheduler = processes.start_scheduler(env)
    try:
        deadline = time.monotonic() + 30
        beat = None
        while time.monotonic() < deadline and beat is None:
            async with owner_engine.connect() as conn:
                beat = await conn.scalar(text("SELECT last_beat_at FROM job_heartbeats WHERE name = 'jobs-runner'"))
            await asyncio.sleep(0.3)
        assert beat is not None, scheduler.log() + worker.log()
    finally:
        scheduler.stop()
        worker.stop()


async def test_dead_letters_are_listed_and_replayed(settings, redis):
    from dramatiq import Message

    from spotless.lib.jobs.dlq import count_dead_letters, list_dead_letters, replay_dead_letters

    broker = build_broker(settings)
    try:
        dead = Message(queue_name="default", actor_name="system.record", args=("from-dlq",), kwargs={}, options={})
        # Put a message in the dead-letter set exactly as Dramatiq does after the last retry.
        key = f"{settings.jobs.namespace}:default.XQ"
        await redis.zadd(key, {"rid-1": int(time.time() * 1000)})
        await redis.hset(f"{key}.msgs", "rid-1", dead.encode())
        assert (await count_dead_letters(redis, settings.jobs.namespace))["default"] == 1
        listed = list_dead_letters(broker)
        assert [e["actor"] for e in listed] == ["system.record"]
        assert replay_dead_letters(broker) == 1
        assert (await count_dead_letters(redis, settings.jobs.namespace))["default"] == 0
        assert await redis.hlen(f"{settings.jobs.namespace}:default.msgs") == 1
    finally:
        broker.close()


async def test_any_job_runs_once_by_name_from_the_command_line(owner_engine):
    import subprocess
    import sys

    from tests.conftest import test_env
    from tests.support.processes import REPO

    env = {**__import__("os").environ, **test_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.run", "--job", "system.tick", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM job_heartbeats WHERE name = 'jobs-runner'")) == 1
    unknown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.run", "--job", "no.such.job", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and b"unknown job" in unknown.stderr


def _run_job(*args: str) -> subprocess.CompletedProcess[bytes]:
    import os
    import sys

    from tests.conftest import test_env
    from tests.support.processes import REPO

    env = {**os.environ, **test_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    return subprocess.run(
        [sys.executable, "-m", "workers.run", *args], env=env, cwd=REPO, capture_output=True, timeout=60
    )


async def test_the_operations_guides_job_names_run_or_say_they_are_not_built(owner_engine):
    # A guide's name for a job we have runs it: `jobs-runner` is the tick that writes the heartbeat.
    done = await asyncio.to_thread(_run_job, "--job", "jobs-runner", "--once")
    assert done.returncode == 0, done.stderr.decode()
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM job_heartbeats WHERE name = 'jobs-runner'")) == 1
    cleanup = await asyncio.to_thread(_run_job, "--job", "cleanup", "--once")
    assert cleanup.returncode == 0, cleanup.stderr.decode()
    # `gcal-sync` runs the Google Calendar poller (no connection here: nothing to sync).
    gcal = await asyncio.to_thread(_run_job, "--job", "gcal-sync", "--once")
    assert gcal.returncode == 0, gcal.stderr.decode()
    # `qbo-sync` is built (QuickBooks not configured here: it claims nothing and ends).
    qbo = await asyncio.to_thread(_run_job, "--job", "qbo-sync", "--once")
    assert qbo.returncode == 0, qbo.stderr.decode()
    # A guide's job whose domain comes later is named as such, not as an unknown job.
    for name in ("export-dead-letter",):
        refused = await asyncio.to_thread(_run_job, "--job", name, "--once")
        assert refused.returncode == 3, (name, refused.stderr)
        assert f"job {name!r} is not built yet".encode() in refused.stderr
        assert b"unknown job" not in refused.stderr
    listing = await asyncio.to_thread(_run_job, "--list")
    assert "system.tick  (jobs-runner)" in listing.stdout.decode().splitlines()
    assert "storage.janitor  (storage-janitor)" in listing.stdout.decode().splitlines()
    assert "retention.apply  (retention-cleanup, system.purge_outbox)" in listing.stdout.decode().splitlines()
    assert "integrations.qbo_sync  (qbo-sync)" in listing.stdout.decode().splitlines()


async def test_hung_redis_does_not_hold_the_outbox_forever(settings, sessionmaker, owner_engine):
    """A broker that accepts connections and never answers: the relay gives up, the job stays pending."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        hung = build_broker(make_settings(REDIS_URL=f"redis://127.0.0.1:{hole.getsockname()[1]}/0"))
        async with sessionmaker() as session, session.begin():
            enqueue(session, "system.record", "during-hang")
        started = time.monotonic()
        delivered = await asyncio.wait_for(OutboxRelay(sessionmaker, hung).relay(), timeout=30)
        elapsed = time.monotonic() - started
        hung.close()
    finally:
        hole.close()
    assert delivered == 0 and elapsed < 15
    assert await _pending(owner_engine) == 1


_TYPED_CALLS = """
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.actors import sync_sessions
from spotless.domain.messaging.actors import deliver_message

def request(session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    deliver_message.enqueue(session, org_id=org_id, delivery_id=uuid.uuid4())
    sync_sessions.enqueue(session, org_id=org_id, user_id=user_id)
    deliver_message.enqueue(session, org_id=str(org_id), delivery_id=uuid.uuid4())  # line 13
    deliver_message.enqueue(session, org_id=org_id)  # line 14
"""


def test_enqueueing_is_type_checked_against_the_jobs_signature(tmp_path):
    import os
    import sys

    from tests.support.processes import REPO

    snippet = tmp_path / "calls.py"
    snippet.write_text(_TYPED_CALLS)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(snippet)],
        env={**os.environ, "MYPYPATH": str(REPO / "src")},
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    errors = [line.split(": error: ")[0].rsplit(":", 1)[-1] for line in done.stdout.decode().splitlines()]
    assert errors == ["13", "14"], done.stdout.decode()


async def test_typed_enqueue_encodes_ids_and_datetimes_and_the_job_gets_them_back(sessionmaker, owner_engine):
    from spotless.domain.identity.actors import sync_sessions
    from spotless.lib.jobs.registry import decoding, encode_argument

    org_id, user_id, changed_at = uuid.uuid4(), uuid.uuid4(), datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        sync_sessions.enqueue(session, org_id, user_id=user_id)
    async with owner_engine.connect() as conn:
        args, kwargs = (
            await conn.execute(text("SELECT args, kwargs FROM job_outbox WHERE actor_name = 'identity.sync_sessions'"))
        ).one()
    assert args == [str(org_id)] and kwargs == {"user_id": str(user_id)}
    kwargs["changed_at"] = encode_argument(changed_at)
    assert kwargs["changed_at"] == changed_at.isoformat()

    received: dict[str, object] = {}

    async def job(org_id: uuid.UUID, user_id: uuid.UUID, changed_at: datetime, note: str | None = None) -> None:
        received.update(org_id=org_id, user_id=user_id, changed_at=changed_at, note=note)

    await decoding(job)(*args, **kwargs, note="as sent")
    assert received == {"org_id": org_id, "user_id": user_id, "changed_at": changed_at, "note": "as sent"}
