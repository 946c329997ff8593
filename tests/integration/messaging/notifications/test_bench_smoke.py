"""The messaging bench rows run end to end with tiny numbers (the integrator runs the real ones)."""

from __future__ import annotations

from scripts.bench import messaging

from spotless.settings import normalize_database_url
from tests.conftest import ADMIN_URL, test_env


async def test_the_messaging_bench_runs_with_tiny_numbers() -> None:
    results = await messaging.run(
        test_env(LOG_LEVEL="WARNING"), messages=10, rounds=5, admin_url=normalize_database_url(ADMIN_URL)
    )
    throughput, latency = results
    assert throughput.requests == 10 and throughput.errors == 0
    assert len(latency.latencies_ms) == 5 and latency.errors == 0  # 5 rounds after 3 warm-up ones
    assert all(ms > 0 for ms in latency.latencies_ms)
