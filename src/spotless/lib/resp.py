"""A minimal pipelined Redis client for the request path's per-request commands: the limiter's
EVALSHA and the session check's MGET (domain/identity/session_cache.py).

Why not redis-py here: on this class of machine a redis-py asyncio call costs about 0.3 ms of
client-side CPU (connection pool, retry wrapper, stream reader), and a burst of concurrent
requests either opens a connection each or queues on the pool: the limiter's budget is 0.3 ms in
all. This client keeps one connection per process and writes every command to it as it comes
(pipelining): concurrent requests share the socket, replies come back in order and resolve their
futures from `data_received`. Each request is still exactly one command per use, one round trip.

It speaks RESP2 and supports redis://, rediss:// (TLS) and unix:// URLs with user, password and
db. TLS is the event loop's own (`create_connection(ssl=...)`), with the SSLContext lib/redis.py
builds from REDIS_TLS_CA_FILE / _CERT_FILE / _KEY_FILE, so it verifies and authenticates exactly
as the redis-py clients do. Anything more belongs in redis-py (used everywhere else in the app).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = int | bytes | str | list[Any] | None


class RespError(Exception):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`)."""

    @property
    def no_script(self) -> bool:
        return str(self).startswith("NOSCRIPT")


class _Incomplete(Exception):
    pass


def encode(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else (b"%d" % arg if isinstance(arg, int) else arg.encode())
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse(buffer: bytes | bytearray, pos: int = 0) -> tuple[Reply | RespError, int]:
    """One RESP2 value from `buffer[pos:]`: (value, position after it); _Incomplete if cut short."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buffer[pos : pos + 1]
    line = bytes(buffer[pos + 1 : end])
    after = end + 2
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line.decode(), after
    if kind == b"-":
        return RespError(line.decode(errors="replace")), after
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            raise _Incomplete
        return bytes(buffer[after : after + length]), after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items: list[Any] = []
        for _ in range(count):
            item, after = parse(buffer, after)
            items.append(item)
        return items, after
    raise RespError(f"protocol error: unexpected reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: deque[asyncio.Future[Reply]] = deque()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        pos = 0
        while self.waiters:
            try:
                value, pos = parse(self.buffer, pos)
            except _Incomplete:
                break
            waiter = self.waiters.popleft()
            # A waiter whose request gave up (deadline) is still in line: its reply is dropped here.
            if not waiter.done():
                if isinstance(value, RespError):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        if pos:
            del self.buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectionError(f"Redis connection lost: {exc}" if exc else "Redis connection closed")
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, payload: bytes) -> asyncio.Future[Reply]:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("Redis connection closed")
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.transport.write(payload)
        return waiter


class RespClient:
    """`await client.call("EVALSHA", sha, 1, key, ...)`. Connects on first use and after any loss;
    `reset()` drops the connection (after a timeout: a hung server's socket is not reused)."""

    def __init__(self, url: str, *, connect_timeout: float = 1.0, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
        query = parse_qs(parts.query)
        self.unix_path = parts.path if parts.scheme == "unix" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.ssl_context = ssl_context if self.tls else None
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        db_text = query.get("db", [""])[0] or (parts.path.lstrip("/") if parts.scheme != "unix" else "")
        self.db = int(db_text or 0)
        self.connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._connect_task: asyncio.Task[_Protocol] | None = None

    async def call(
        self, *args: bytes | str | int, sent: Callable[[asyncio.Future[Reply]], None] | None = None
    ) -> Reply:
        """Send one command and wait for its reply; `sent` receives the reply's future once the
        command is written (a deadline watches it)."""
        protocol = self._protocol
        if protocol is None or protocol.closed or self._loop is not asyncio.get_running_loop():
            protocol = await self._connection()
        reply = protocol.send(encode(*args))
        if sent is not None:
            sent(reply)
        return await reply

    async def _connection(self) -> _Protocol:
        # Concurrent callers share one connection attempt.
        if self._connecting is None or self._loop is not asyncio.get_running_loop():
            self.reset()
            self._loop = asyncio.get_running_loop()
            self._connecting = self._loop.create_future()
            self._connect_task = self._loop.create_task(self._connect())
            self._connect_task.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Task[_Protocol]) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is None or connecting.done():
            return
        if task.cancelled():
            connecting.set_exception(ConnectionError("Redis connection attempt cancelled"))
        elif task.exception() is not None:
            connecting.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            self._protocol = task.result()
            connecting.set_result(task.result())

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            if self.unix_path:
                _, protocol = await loop.create_unix_connection(_Protocol, self.unix_path)
            else:
                context = (self.ssl_context or ssl.create_default_context()) if self.tls else None
                _, protocol = await loop.create_connection(_Protocol, self.host, self.port, ssl=context)
            setup: list[asyncio.Future[Reply]] = []
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                setup.append(protocol.send(encode("AUTH", *auth)))
            if self.db:
                setup.append(protocol.send(encode("SELECT", self.db)))
            try:
                for reply in setup:
                    await reply
            except Exception:
                if protocol.transport is not None:
                    protocol.transport.close()
                raise
        return protocol

    def reset(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    async def aclose(self) -> None:
        self.reset()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self._connecting = None


class Deadline:
    """`asyncio.timeout` for a Redis reply, fair to a busy event loop.

    A plain timeout fires from the loop's timer list: when the loop is busy with other requests, a
    reply that reached the socket in time can be waiting for the same loop turn and would be thrown
    away, and the caller would fall back for nothing. Here, at the deadline, a reply already read
    (`track`ed future done) is kept; otherwise the check is repeated once after the next turn's I/O
    has been read. Only a reply that had not reached this process by then counts as too slow."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._handle: asyncio.Handle | None = None
        self._expired = False
        self._tracked: asyncio.Future[Any] | None = None

    def track(self, future: asyncio.Future[Any]) -> None:
        """The reply being waited for (the latest, if there are several in turn)."""
        self._tracked = future

    async def __aenter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = loop.call_later(self.seconds, self._check, loop, True)
        return self

    def _check(self, loop: asyncio.AbstractEventLoop, first: bool) -> None:
        self._handle = None
        if self._tracked is not None and self._tracked.done():
            # The reply is here and the task resumes on the next turn. Keep watching (once more)
            # in case it then waits again, e.g. EVAL after NOSCRIPT.
            self._tracked = None
            self._handle = loop.call_at(loop.time(), self._check, loop, False)
            return
        if first:
            # A timer due now runs on the next turn after that turn's I/O callbacks.
            self._handle = loop.call_at(loop.time(), self._check, loop, False)
            return
        self._expired = True
        self._task.cancel()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and exc_type is asyncio.CancelledError and self._task.uncancel() <= self._cancelling:
            raise TimeoutError(f"no reply within {self.seconds * 1000:.0f} ms") from exc
