"""Redis clients and their circuit breakers, built per process from settings, never at import.

Every connection to Redis in the app is made from here (redis-py asyncio clients, the Dramatiq
broker's synchronous pool, the limiter's own client), so the URL forms and TLS options of managed
Redis work for all of them alike:

- `redis://[user:password@]host:port/db`, `rediss://...` (TLS), `unix:///path?db=N`; user and
  password (percent-encoded) come from the URL.
- With rediss://: REDIS_TLS_CA_FILE verifies the server (else the system's CA store),
  REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE present a client certificate (mutual TLS), and
  REDIS_TLS_CHECK_HOSTNAME=false only for servers whose certificate does not name them.

One circuit breaker per Redis server per process (`redis_breaker`), shared by every hot-path use
of that server: the session check, the rate limiter, sign-in throttling. See lib/circuit.py.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import redis as redis_sync
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from spotless.lib.circuit import CircuitBreaker
from spotless.settings import RedisSettings


def is_tls(url: str) -> bool:
    return urlsplit(url).scheme == "rediss"


def tls_options(settings: RedisSettings, url: str | None = None) -> dict[str, Any]:
    """redis-py's ssl_* keyword arguments for a rediss:// URL ({} otherwise: redis-py refuses
    ssl_* arguments on plain connections)."""
    if not is_tls(url or settings.url):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": settings.tls_check_hostname}
    if settings.tls_ca_file:
        options["ssl_ca_certs"] = settings.tls_ca_file
    if settings.tls_cert_file:
        options["ssl_certfile"] = settings.tls_cert_file
        options["ssl_keyfile"] = settings.tls_key_file
    return options


def ssl_context(settings: RedisSettings, url: str | None = None) -> ssl.SSLContext | None:
    """The same TLS options as an SSLContext (for clients that are not redis-py's)."""
    if not is_tls(url or settings.url):
        return None
    context = ssl.create_default_context(cafile=settings.tls_ca_file)
    context.check_hostname = settings.tls_check_hostname
    if settings.tls_cert_file:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


def create_redis(settings: RedisSettings, *, socket_timeout: float | None = None, url: str | None = None) -> Redis:
    """An asyncio client. No retries: on the request path a retry doubles the wait of an outage,
    and callers have their fallbacks (or a job that runs again)."""
    timeout = settings.socket_timeout_seconds if socket_timeout is None else socket_timeout
    # Remembered so `breaker_of(client)` builds the server's breaker from these settings.
    _settings_of.setdefault(endpoint(url or settings.url), (settings, url or settings.url))
    return Redis.from_url(
        url or settings.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=False,
        retry=Retry(NoBackoff(), 0),
        **tls_options(settings, url),
    )


def create_sync_pool(settings: RedisSettings, *, socket_timeout: float) -> redis_sync.ConnectionPool:
    """A synchronous pool (the Dramatiq broker's)."""
    return redis_sync.ConnectionPool.from_url(
        settings.url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        **tls_options(settings),
    )


def endpoint(url: str) -> str:
    """The server a URL points at, without credentials or db: `host:port` or `unix:/path`."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


_breakers: dict[str, CircuitBreaker] = {}
_settings_of: dict[str, tuple[RedisSettings, str]] = {}


def redis_breaker(settings: RedisSettings, url: str | None = None) -> CircuitBreaker:
    """The process' breaker for the Redis server of `url` (REDIS_URL by default), created on
    first use with a probe that PINGs on a fresh connection (so it never queues behind, or
    reuses, a connection a hung server has stalled). The first caller's settings configure it."""
    url = url or settings.url
    key = endpoint(url)
    breaker = _breakers.get(key)
    if breaker is None:
        probe_timeout = settings.breaker_probe_timeout_ms / 1000

        async def probe() -> None:
            client = create_redis(settings, socket_timeout=probe_timeout, url=url)
            try:
                await client.ping()
            finally:
                await client.aclose()

        breaker = CircuitBreaker(
            f"redis:{key}",
            probe,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            probe_timeout_seconds=probe_timeout,
        )
        _breakers[key] = breaker
    return breaker


def breaker_of(client: Redis) -> CircuitBreaker:
    """The breaker of the server a redis-py client talks to (for code handed only a client)."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        key = f"unix:{kwargs['path']}"
    else:
        key = f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"
    known = _settings_of.get(key)
    if known is not None:
        return redis_breaker(*known)
    breaker = _breakers.get(key)
    if breaker is None:  # a client made elsewhere: probe through it, with default timings

        async def probe() -> None:
            await client.ping()

        breaker = _breakers[key] = CircuitBreaker(f"redis:{key}", probe)
    return breaker


def forget_breakers(url: str | None = None) -> None:
    """Drop every breaker (or the one of `url`'s server) so the next user creates it afresh: for
    tests that start a Redis of their own on a port an earlier test may have used."""
    for key in list(_breakers):
        if url is None or key == endpoint(url):
            _breakers.pop(key).reset()


def reset_breakers() -> None:
    """Close every breaker of this process (tests: one test's outage must not spill into the next)."""
    for breaker in _breakers.values():
        breaker.reset()
