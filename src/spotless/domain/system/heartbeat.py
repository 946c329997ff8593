"""The scheduler heartbeat: written by the tick job, read by /readyz (Redis first, Postgres second)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

HEARTBEAT_NAME = "jobs-runner"


def redis_key(namespace: str, name: str = HEARTBEAT_NAME) -> str:
    return f"{namespace}:heartbeat:{name}"


async def beat_postgres(
    session: AsyncSession, runner_id: str, error: str | None = None, name: str = HEARTBEAT_NAME
) -> None:
    await session.execute(
        text(
            "INSERT INTO job_heartbeats (name, last_beat_at, runner_id, last_error, last_error_at) "
            "VALUES (:name, now(), :runner, CAST(:error AS text), CASE WHEN CAST(:error AS text) IS NULL THEN NULL ELSE now() END) "
            "ON CONFLICT (name) DO UPDATE SET last_beat_at = now(), runner_id = EXCLUDED.runner_id, "
            "last_error = COALESCE(EXCLUDED.last_error, job_heartbeats.last_error), "
            "last_error_at = COALESCE(EXCLUDED.last_error_at, job_heartbeats.last_error_at)"
        ),
        {"name": name, "runner": runner_id, "error": error},
    )


async def beat_redis(redis: Redis, namespace: str, runner_id: str, ttl_seconds: int) -> None:
    payload = json.dumps({"beat_at": datetime.now(UTC).isoformat(), "runner_id": runner_id})
    await redis.set(redis_key(namespace), payload, ex=max(ttl_seconds, 1))


async def read_redis(redis: Redis, namespace: str) -> datetime | None:
    raw = await redis.get(redis_key(namespace))
    if raw is None:
        return None
    return datetime.fromisoformat(json.loads(raw)["beat_at"])


async def read_postgres(session: AsyncSession, name: str = HEARTBEAT_NAME) -> datetime | None:
    return await session.scalar(text("SELECT last_beat_at FROM job_heartbeats WHERE name = :n"), {"n": name})
