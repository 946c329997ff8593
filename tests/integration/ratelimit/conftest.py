"""An API built by create_app with the limiter on, plus one tiny route per route class."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post

from spotless.app import create_app
from spotless.lib.redis import forget_breakers
from tests.conftest import make_settings
from tests.support import processes


@get("/v1/_rl/auth", opt={"public": True, "rate_limit": "auth"}, sync_to_thread=False)
def auth_route() -> dict[str, bool]:
    return {"ok": True}


@get("/v1/_rl/admin", opt={"public": True, "rate_limit": "admin"}, sync_to_thread=False)
def admin_route() -> dict[str, bool]:
    return {"ok": True}


@get("/v1/_rl/public", opt={"public": True, "rate_limit": "public"}, sync_to_thread=False)
def public_route() -> dict[str, bool]:
    return {"ok": True}


@get("/v1/_rl/export", opt={"public": True, "rate_limit": "expensive"}, sync_to_thread=False)
def expensive_route() -> dict[str, bool]:
    return {"ok": True}


@post("/v1/_rl/webhook", opt={"public": True, "rate_limit": "exempt"}, sync_to_thread=False)
def webhook_route() -> dict[str, bool]:
    return {"ok": True}


@get("/v1/_rl/plain", opt={"public": True}, sync_to_thread=False)
def default_route() -> dict[str, bool]:
    return {"ok": True}


@post("/v1/_rl/echo", opt={"public": True}, sync_to_thread=False)
def echo_route(data: dict[str, Any]) -> dict[str, int]:
    return {"keys": len(data)}


TEST_ROUTES = [
    auth_route,
    admin_route,
    public_route,
    expensive_route,
    webhook_route,
    default_route,
    echo_route,
]


def build_app(**env: str) -> Litestar:
    app = create_app(make_settings(**{"RATE_LIMIT_ENABLED": "true", **env}))
    for route in TEST_ROUTES:
        app.register(route)
    return app


@asynccontextmanager
async def serve(
    app: Litestar, peer: str = "203.0.113.10", base_url: str = "http://testserver.local"
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, reached from `peer` (a real-looking client address)."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


class RedisServer:
    """A redis-server of the test's own, so stopping or freezing it never touches the shared one."""

    def __init__(self) -> None:
        self.port = processes.free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def info(self, section: str) -> dict[str, str]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(f"INFO {section}\r\n".encode())
            data = b""
            while True:
                data += sock.recv(65536)
                header, _, rest = data.partition(b"\r\n")
                if header.startswith(b"$") and len(rest) >= int(header[1:]):
                    break
        fields: dict[str, str] = {}
        for line in rest.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                name, _, value = line.partition(":")
                fields[name] = value
        return fields

    def commands(self) -> dict[str, int]:
        """Calls per command since start (INFO commandstats), e.g. {"evalsha": 12, "info": 3}."""
        stats = self.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(value.split("calls=")[1].split(",")[0]) for name, value in stats.items()
        }


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    forget_breakers(server.url())  # a breaker an earlier test left on this port number
    server.start()
    try:
        yield server
    finally:
        server.stop()
