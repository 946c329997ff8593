"""Dead letters live in Dramatiq's Redis keys ($ns:$queue.XQ + .XQ.msgs). List, count and replay them."""

from __future__ import annotations

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
