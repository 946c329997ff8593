"""A worker container's series are scraped from the worker itself: job counters and the
`bookings_total` its subscriber counts are otherwise only in the worker's metrics directory,
which the API's /metrics never reads."""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from spotless.db.engine import create_engine, session_factory
from spotless.domain import registry
from spotless.domain.system.events import Probed
from spotless.lib.events import emit
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.settings import Settings
from tests.conftest import test_env
from tests.support import processes

registry.import_jobs()


@pytest.fixture
async def sessionmaker(settings: Settings) -> AsyncIterator[Any]:
    engine = create_engine(settings.database, application_name="test-worker-metrics")
    yield session_factory(engine)
    await engine.dispose()


TOKEN = "worker-scrape-token-0123456789"


def _scrape(port: int, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening yet
        return 0, ""


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def test_a_worker_serves_its_own_metrics_behind_the_token(settings: Settings, sessionmaker: Any) -> None:
    port = processes.free_port()
    with tempfile.TemporaryDirectory() as prom_dir:
        env = test_env(METRICS_PROCESS_PORT=str(port), METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=prom_dir)
        # Two processes share the directory; exactly one serves it, and it reports both.
        worker = processes.start_worker(env, processes=2, threads=2)
        broker = build_broker(settings)
        relay = OutboxRelay(sessionmaker, broker)
        install_relay(relay)
        try:
            deadline = time.monotonic() + 20
            status = 0
            while time.monotonic() < deadline and status != 200:
                status, text = await asyncio.to_thread(_scrape, port, TOKEN)
                await asyncio.sleep(0.2)
            assert status == 200, worker.log()
            # Documented series exist before anything happened (an alert on them sees 0, not nothing).
            assert _value(text, "bookings_total", action="created") == 0

            assert (await asyncio.to_thread(_scrape, port, None))[0] == 401
            assert (await asyncio.to_thread(_scrape, port, "wrong"))[0] == 401

            async with sessionmaker() as session, session.begin():
                emit(session, Probed(marker="scraped"))
            await relay.drain()
            counted = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not counted:
                _, text = await asyncio.to_thread(_scrape, port, TOKEN)
                counted = _value(text, "dramatiq_messages_total", actor_name="system.probe_first", outcome="ok")
                await asyncio.sleep(0.2)
            assert counted == 1, worker.log()
        finally:
            install_relay(None)
            broker.close()
            worker.stop()
