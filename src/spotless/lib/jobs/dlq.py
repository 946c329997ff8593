"""Dead letters live in Dramatiq's Redis keys ($ns:$queue.XQ + .XQ.msgs). List, count and replay them."""

from __future__ import annotations

import uuid
from typing import Any, cast

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from redis.asyncio import Redis

from spotless.lib.jobs.registry import JOBS


def _queues() -> set[str]:
    return {spec.queue for spec in JOBS.values()}


async def count_dead_letters(redis: Redis, namespace: str) -> dict[str, int]:
    return {queue: int(await redis.zcard(f"{namespace}:{queue}.XQ")) for queue in sorted(_queues())}


def list_dead_letters(broker: RedisBroker, limit: int = 100) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for queue in sorted(_queues()):
        key = f"{broker.namespace}:{queue}.XQ"
        for redis_id, score in cast(
            list[tuple[bytes, float]], broker.client.zrange(key, 0, limit - 1, withscores=True)
        ):
            raw = cast(bytes | None, broker.client.hget(f"{key}.msgs", redis_id))
            if raw is None:
                continue
            message = Message.decode(raw)
            entries.append(
                {
                    "queue": queue,
                    "redis_id": redis_id.decode(),
                    "message_id": message.message_id,
                    "actor": message.actor_name,
                    "args": message.args,
                    "kwargs": message.kwargs,
                    "dead_at_ms": int(score),
                    "error": message.options.get("traceback", "")[-500:],
                }
            )
    return entries


def replay_dead_letters(broker: RedisBroker, redis_ids: list[str] | None = None) -> int:
    """Send dead messages back to their queue with a fresh retry budget; removes them from the DLQ."""
    replayed = 0
    for queue in sorted(_queues()):
        key = f"{broker.namespace}:{queue}.XQ"
        ids = [i.decode() for i in cast(list[bytes], broker.client.zrange(key, 0, -1))]
        for redis_id in ids:
            if redis_ids is not None and redis_id not in redis_ids:
                continue
            raw = cast(bytes | None, broker.client.hget(f"{key}.msgs", redis_id))
            if raw is not None:
                message = Message.decode(raw)
                options = {
                    k: v for k, v in message.options.items() if k not in ("retries", "traceback", "redis_message_id")
                }
                broker.enqueue(
                    Message(
                        queue_name=message.queue_name,
                        actor_name=message.actor_name,
                        args=message.args,
                        kwargs=message.kwargs,
                        options=options,
                        message_id=message.message_id,
                    )
                )
                replayed += 1
            broker.client.zrem(key, redis_id)
            broker.client.hdel(f"{key}.msgs", redis_id)
    return replayed


# --- one organisation's dead letters (the admin API) -------------------------------------------

# The most dead letters one request reads per queue: the DLQ is small in a healthy system, and a
# flooded one must not turn a status call into a scan of everything.
SCAN_LIMIT = 10_000


def message_org(message: Message[Any]) -> str | None:
    """The organisation a job belongs to: its `org_id` keyword, a first argument that is an id, or
    the `org_id` of an event payload. None for system jobs: no organisation's admin sees those."""
    kwargs = message.kwargs or {}
    if isinstance(kwargs.get("org_id"), str):
        return str(kwargs["org_id"])
    for position, value in enumerate(message.args or ()):
        if position == 0 and isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
        if isinstance(value, dict) and isinstance(value.get("org_id"), str):
            return str(value["org_id"])
    return None


async def org_dead_letters(redis: Redis, namespace: str, org_id: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """How many dead letters belong to `org_id`, and the first `limit` of them (newest first)."""
    count = 0
    entries: list[dict[str, Any]] = []
    for queue in sorted(_queues()):
        key = f"{namespace}:{queue}.XQ"
        found = cast(list[tuple[bytes, float]], await redis.zrevrange(key, 0, SCAN_LIMIT - 1, withscores=True))
        if not found:
            continue
        raws = cast(list[bytes | None], await redis.hmget(f"{key}.msgs", [rid for rid, _ in found]))
        for (redis_id, score), raw in zip(found, raws, strict=True):
            if raw is None:
                continue
            message = Message.decode(raw)
            if message_org(message) != org_id:
                continue
            count += 1
            if len(entries) < limit:
                # The exception's last line only: a traceback's frames are not the admin's business.
                lines = str(message.options.get("traceback") or "").strip().splitlines()
                entries.append(
                    {
                        "queue": queue,
                        "redis_id": redis_id.decode(),
                        "actor": message.actor_name,
                        "dead_at_ms": int(score),
                        "error": lines[-1][:500] if lines else None,
                    }
                )
    return count, entries


async def find_org_dead_letter(
    redis: Redis, namespace: str, org_id: str, redis_id: str
) -> tuple[str, Message[Any]] | None:
    """(queue, message) of the dead letter `redis_id` if it belongs to `org_id`; not removed."""
    for queue in sorted(_queues()):
        raw = cast(bytes | None, await redis.hget(f"{namespace}:{queue}.XQ.msgs", redis_id))
        if raw is None:
            continue
        message = Message.decode(raw)
        return (queue, message) if message_org(message) == org_id else None
    return None


async def drop_dead_letter(redis: Redis, namespace: str, queue: str, redis_id: str) -> None:
    key = f"{namespace}:{queue}.XQ"
    await redis.zrem(key, redis_id)
    await redis.hdel(f"{key}.msgs", redis_id)


async def org_dead_since(redis: Redis, namespace: str, org_id: str, since_ms: int) -> list[Message[Any]]:
    """The dead letters of `org_id` that died at or after `since_ms` (the set's score is the time
    of death), at most SCAN_LIMIT per queue: the office's daily notice (messaging/notifications/office)."""
    found: list[Message[Any]] = []
    for queue in sorted(_queues()):
        key = f"{namespace}:{queue}.XQ"
        ids = cast(list[bytes], await redis.zrangebyscore(key, since_ms, "+inf", start=0, num=SCAN_LIMIT))
        if not ids:
            continue
        for raw in cast(list[bytes | None], await redis.hmget(f"{key}.msgs", ids)):
            if raw is None:
                continue
            message = Message.decode(raw)
            if message_org(message) == org_id:
                found.append(message)
    return found
