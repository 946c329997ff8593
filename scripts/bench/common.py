"""Shared benchmark machinery: a real API node on loopback, a load loop, and the result table.

Figures are for comparison within one run (same machine, same client): each table puts our endpoint
next to a baseline measured in the same run."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: int = 0
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return 0.0
        return data[min(len(data) - 1, round(q * (len(data) - 1)))]

    def row(self) -> str:
        return (
            f"| {self.name} | {self.rps:,.0f} | {self.pct(0.5):.2f} | {self.pct(0.99):.2f} | "
            f"{self.errors} | {self.note} |"
        )


HEADER = "| benchmark | req/s (or ops/s) | p50 ms | p99 ms | errors | note |\n|---|---:|---:|---:|---:|---|"


@dataclass
class BenchContext:
    base_url: str
    env: dict[str, str]
    client: httpx.AsyncClient
    scale: float = 1.0
    extras: dict[str, Any] = field(default_factory=dict)

    def n(self, base: int) -> int:
        return max(10, int(base * self.scale))


async def measure(
    name: str,
    call: Callable[[int], Awaitable[httpx.Response | None]],
    total: int,
    concurrency: int = 16,
    expect: tuple[int, ...] = (200, 201, 204),
    warmup: int = 20,
    note: str = "",
) -> Result:
    """Run `call(i)` `total` times with `concurrency` in flight; latency per call, errors counted."""
    for i in range(min(warmup, total)):
        await call(-1 - i)
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            try:
                response = await call(i)
                if response is not None and response.status_code not in expect:
                    errors += 1
            except Exception:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, total, time.perf_counter() - started, latencies, errors, note)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))
