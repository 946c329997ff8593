"""Redis clients are built per process from settings, never at import."""

from __future__ import annotations

from redis.asyncio import Redis

from spotless.settings import RedisSettings


def create_redis(settings: RedisSettings, *, socket_timeout: float | None = None) -> Redis:
    timeout = settings.socket_timeout_seconds if socket_timeout is None else socket_timeout
    return Redis.from_url(
        settings.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=False,
    )
