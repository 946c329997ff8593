"""The circuit breaker's rules, on a fake clock (no I/O)."""

from __future__ import annotations

import asyncio

from redis.exceptions import ResponseError

from spotless.lib.circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Probe:
    def __init__(self) -> None:
        self.calls = 0
        self.healthy = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> None:
        self.calls += 1
        await self.gate.wait()
        if not self.healthy:
            raise ConnectionError("still down")


def breaker(probe: Probe, clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("redis:test", probe, cooldown_seconds=1.0, probe_timeout_seconds=0.2, clock=clock)


async def test_one_outage_opens_it_and_calls_go_to_the_fallback_without_trying():
    clock, probe = Clock(), Probe()
    circuit = breaker(probe, clock)
    tried = 0

    async def redis_call() -> str:
        nonlocal tried
        tried += 1
        raise TimeoutError("no reply")

    assert await circuit.call(redis_call, lambda: "fallback") == "fallback"
    assert circuit.is_open and tried == 1
    for _ in range(10):
        assert await circuit.call(redis_call, lambda: "fallback") == "fallback"
    assert tried == 1  # never tried again while open
    assert probe.calls == 0  # and not probed before the cool-down


async def test_an_error_reply_is_not_an_outage():
    circuit = breaker(Probe(), Clock())

    async def wrong_type() -> str:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    assert await circuit.call(wrong_type, lambda: "fallback") == "fallback"
    assert not circuit.is_open


async def test_one_probe_at_a_time_after_each_cool_down_and_it_closes_by_itself():
    clock, probe = Clock(), Probe()
    circuit = breaker(probe, clock)
    circuit.failure(ConnectionError("refused"))
    clock.now += 1.0
    probe.gate.clear()  # the probe hangs, as on a frozen server
    for _ in range(20):
        assert not circuit.allow()
    await asyncio.sleep(0)
    assert probe.calls == 1  # one probe, however many callers
    probe.gate.set()
    await asyncio.sleep(0.01)
    assert circuit.is_open  # it failed: open for another cool-down
    assert not circuit.allow()
    await asyncio.sleep(0)
    assert probe.calls == 1
    clock.now += 1.0
    probe.healthy = True
    assert not circuit.allow()  # this caller still uses the fallback; the probe runs beside it
    await asyncio.sleep(0.01)
    assert probe.calls == 2 and not circuit.is_open
    assert circuit.allow()


async def test_a_hung_probe_is_bounded_by_its_timeout():
    clock, probe = Clock(), Probe()
    probe.healthy = True
    circuit = breaker(probe, clock)
    circuit.failure(OSError("reset"))
    clock.now += 1.0
    probe.gate.clear()
    circuit.allow()
    await asyncio.sleep(0.3)  # past the probe's 0.2 s
    assert circuit.is_open
    clock.now += 1.0
    probe.gate.set()
    circuit.allow()
    await asyncio.sleep(0.01)
    assert not circuit.is_open


async def test_guard_fails_fast_while_open():
    circuit = breaker(Probe(), Clock())
    circuit.failure(ConnectionError("refused"))

    async def never() -> None:
        raise AssertionError("must not be called")

    try:
        await circuit.guard(never)
    except ConnectionError as exc:
        assert "open" in str(exc)
    else:
        raise AssertionError("guard did not refuse")
