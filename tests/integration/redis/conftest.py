"""Redis paths against a redis-server of the test's own (frozen, killed, or speaking TLS)."""

from tests.integration.ratelimit.conftest import RedisServer, redis_server

__all__ = ["RedisServer", "redis_server"]
