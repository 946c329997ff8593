"""Readiness: database, migrations, Redis and (optionally) the scheduler heartbeat.

`/readyz` is public and exempt from rate limiting, so its cost must not follow the number of
callers: a round of checks runs at most once per `CACHE_SECONDS` per process, concurrent callers
share the round in flight, and the database part is one query on one pooled connection (revision
and Postgres heartbeat together). The answer names each check and a status from a fixed
vocabulary; what went wrong (exception text, revisions, ages) goes to the log, never to the caller."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.system import heartbeat
from spotless.domain.system.schemas import Check, Readiness, Status
from spotless.lib.metrics import HEARTBEAT_AGE
from spotless.settings import Settings

logger = logging.getLogger("spotless.readiness")

CHECK_TIMEOUT_SECONDS = 1.5
HEARTBEAT_REDIS_TIMEOUT_SECONDS = 0.5
CACHE_SECONDS = 1.0

T = TypeVar("T")


class _Failed(msgspec.Struct):
    status: Status
    detail: str


async def _bounded(name: str, call: Awaitable[T]) -> T | _Failed:
    """The call's result, or why it failed; the detail is logged here and goes no further."""
    try:
        return await asyncio.wait_for(call, timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        detail = f"timed out after {CHECK_TIMEOUT_SECONDS}s"
        logger.warning("readiness check %s failed: %s", name, detail)
        return _Failed(status="timeout", detail=detail)
    except Exception as exc:
        logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return _Failed(status="unreachable", detail=type(exc).__name__)


_DATABASE = text(
    "SELECT (SELECT version_num FROM alembic_version) AS revision, "
    "(SELECT last_beat_at FROM job_heartbeats WHERE name = :name AND :beat) AS last_beat"
)


async def _database(engine: AsyncEngine, with_heartbeat: bool) -> tuple[str | None, datetime | None]:
    """One connection, one round trip: the revision (reachability too) and the durable heartbeat,
    as a single statement outside a transaction (autocommit: no BEGIN/ROLLBACK around it). There is
    no pool pre-ping: a pooled connection found dead is dropped and the check asked once more."""
    for attempt in (1, 2):
        try:
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                row = (await auto.execute(_DATABASE, {"name": heartbeat.HEARTBEAT_NAME, "beat": with_heartbeat})).one()
            return row.revision, row.last_beat
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


async def _redis_heartbeat(redis: Redis, namespace: str) -> datetime | None:
    try:
        return await asyncio.wait_for(heartbeat.read_redis(redis, namespace), timeout=HEARTBEAT_REDIS_TIMEOUT_SECONDS)
    except Exception:
        return None  # Postgres holds the durable copy


async def check_once(settings: Settings, engine: AsyncEngine, redis: Redis, expected_revision: str) -> Readiness:
    """One round of checks (uncached)."""
    with_heartbeat = settings.jobs.heartbeat_required

    async def no_beat() -> None:
        return None

    database, pong, redis_beat = await asyncio.gather(
        _bounded("database", _database(engine, with_heartbeat)),
        _bounded("redis", redis.ping()),
        _redis_heartbeat(redis, settings.jobs.namespace) if with_heartbeat else no_beat(),
    )
    checks: list[Check] = []
    if isinstance(database, _Failed):
        checks.append(Check(name="database", ok=False, status=database.status, gating=True))
        checks.append(Check(name="migrations", ok=False, status="unknown", gating=True))
        postgres_beat = None
    else:
        revision, postgres_beat = database
        checks.append(Check(name="database", ok=True, status="ok", gating=True))
        at_head = revision == expected_revision
        if not at_head:
            logger.warning("readiness: database revision %s, code expects %s", revision, expected_revision)
        checks.append(Check(name="migrations", ok=at_head, status="ok" if at_head else "mismatch", gating=True))
    # Redis is reported but not gating: the API keeps serving without it.
    redis_status: Status = pong.status if isinstance(pong, _Failed) else "ok"
    checks.append(Check(name="redis", ok=redis_status == "ok", status=redis_status, gating=False))
    if with_heartbeat:
        checks.append(_heartbeat_check(redis_beat or postgres_beat, settings.jobs.heartbeat_ttl_seconds, database))
    ready = all(c.ok for c in checks if c.gating)
    return Readiness(status="ready" if ready else "unavailable", checks=checks)


def _heartbeat_check(last: datetime | None, ttl: int, database: Any) -> Check:
    if last is None:
        # No beat in Redis and none in Postgres, or Postgres could not be asked.
        status: Status = "unknown" if isinstance(database, _Failed) else "missing"
        logger.warning("readiness: no scheduler heartbeat (%s)", status)
        return Check(name="heartbeat", ok=False, status=status, gating=True)
    age = (datetime.now(UTC) - last).total_seconds()
    HEARTBEAT_AGE.labels(job=heartbeat.HEARTBEAT_NAME).set(age)
    if age > ttl:
        logger.warning("readiness: heartbeat %.1fs old, older than JOB_HEARTBEAT_TTL_SECONDS=%s", age, ttl)
        return Check(name="heartbeat", ok=False, status="stale", gating=True)
    return Check(name="heartbeat", ok=True, status="ok", gating=True)


class ReadinessCache:
    """The last round's answer for `ttl` seconds; callers arriving during a round await that round.

    The round is shielded: a caller that disconnects does not cancel the check the others await."""

    def __init__(self, check: Callable[[], Awaitable[Readiness]], ttl: float = CACHE_SECONDS) -> None:
        self._check = check
        self._ttl = ttl
        self._answer: Readiness | None = None
        self._answered_at = 0.0
        self._round: asyncio.Future[Readiness] | None = None
        self.rounds = 0

    async def get(self) -> Readiness:
        if self._answer is not None and time.monotonic() - self._answered_at < self._ttl:
            return self._answer
        if self._round is None:
            self._round = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._round)

    async def _run(self) -> Readiness:
        try:
            self.rounds += 1
            answer = await self._check()
            self._answer, self._answered_at = answer, time.monotonic()
            return answer
        finally:
            self._round = None
