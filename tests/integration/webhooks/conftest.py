"""Outgoing webhooks against a receiver on loopback: the API and the jobs run with the test-only
settings that allow http:// and loopback (production refuses both), and names resolve through a
resolver the test controls (a public-looking name for the receiver, hostile ones for attacks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.webhooks import addresses
from spotless.lib.jobs import JOBS
from spotless.lib.jobs.registry import decoding
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.webhook_receiver import Receiver

registry.import_jobs()


@pytest.fixture(scope="session")
def wh_settings() -> Settings:
    return make_settings(WEBHOOK_ALLOW_HTTP="true", WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_TIMEOUT_SECONDS="2")


@pytest.fixture
def app(wh_settings: Settings) -> Litestar:
    from spotless.app import create_app

    return create_app(wh_settings)


@pytest.fixture
async def runtime(wh_settings: Settings) -> AsyncIterator[Any]:
    rt = build_runtime(wh_settings, application_name="spotless-tests-webhooks")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


class Names:
    """The DNS the test decides: name -> addresses (an unknown name does not resolve)."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError("name does not resolve")
        return list(self.table[host])


@pytest.fixture
def names() -> Iterator[Names]:
    found = Names()
    addresses.set_resolver(found.resolve)
    yield found
    addresses.set_resolver(None)


class Jobs:
    """Runs the outbox rows addressed to the named jobs, once each, as a worker would."""

    def __init__(self, owner_engine: AsyncEngine) -> None:
        self.engine = owner_engine
        self.done: set[Any] = set()

    async def run(self, *names: str) -> int:
        ran = 0
        while True:
            async with self.engine.connect() as conn:
                rows = list(
                    await conn.execute(
                        text(
                            "SELECT id, actor_name, args, kwargs FROM job_outbox WHERE actor_name = ANY(:n) ORDER BY id"
                        ),
                        {"n": list(names)},
                    )
                )
            todo = [r for r in rows if r.id not in self.done]
            if not todo:
                return ran
            for row in todo:
                self.done.add(row.id)
                await decoding(JOBS[row.actor_name].fn)(*row.args, **(row.kwargs or {}))
                ran += 1


@pytest.fixture
def jobs(owner_engine: AsyncEngine) -> Jobs:
    return Jobs(owner_engine)
