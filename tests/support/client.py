"""An HTTP client for the app that runs everything — lifespan, requests, the app's pools — on the
test's own event loop. (Litestar's AsyncTestClient runs the lifespan on a portal thread with its own
loop; the app's asyncpg and Redis connections then get used from two loops, which can crash.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

Client = httpx.AsyncClient


async def _hold_lifespan(app: Litestar, started: asyncio.Future[None], stop: asyncio.Event) -> None:
    # Entered and left in this one task: the lifespan's task group demands it, and pytest fixtures
    # set up and tear down in different tasks.
    try:
        async with app.lifespan():
            started.set_result(None)
            await stop.wait()
    except BaseException as exc:
        if not started.done():
            started.set_exception(exc)
        raise


@asynccontextmanager
async def app_client(app: Litestar, raise_server_exceptions: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    holder = asyncio.create_task(_hold_lifespan(app, started, stop))
    await started
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_server_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield client
    finally:
        stop.set()
        await holder
