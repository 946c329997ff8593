"""Jobs measurements in a process of their own (so each broker is the only global broker); each
prints one JSON line.

- `ours|bare|bare-async N`: enqueue N no-op messages, then time a worker (8 threads) draining them.
- `latency N [MAX_GAP_MS]`: commit N transactions that each request one job (`system.record`), through the
  outbox fast path exactly as the API does (relay installed, after-commit hook); a worker running
  elsewhere pushes the marker to Redis when the actor starts. Commits come 0-MAX_GAP_MS (300) apart,
  so the worker idles between them. Prints commit -> actor start in ms.
- `steady SECONDS RATE`: send RATE no-op messages a second for SECONDS (a steady load)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from spotless.settings import load_settings


def main(kind: str, total: int) -> None:
    settings = load_settings()
    namespace = f"bench-{kind}"
    if kind == "ours":
        from spotless.domain import registry
        from spotless.lib.jobs.broker import build_broker

        registry.import_jobs()
        broker = build_broker(settings)
        broker.namespace = namespace
        actor = broker.get_actor("system.noop")
    elif kind == "bare-async":
        # Dramatiq's default middleware plus AsyncIO, an async no-op: the floor for an async actor
        # (its coroutine hops to the event-loop thread and back).
        from dramatiq.middleware import AsyncIO, default_middleware

        broker = RedisBroker(
            url=settings.redis.url, namespace=namespace, middleware=[m() for m in default_middleware] + [AsyncIO()]
        )
        dramatiq.set_broker(broker)

        @dramatiq.actor(broker=broker, actor_name="bare_async_noop")
        async def bare_async_noop(marker: str | None = None) -> None:
            pass

        actor = bare_async_noop
    else:
        broker = RedisBroker(url=settings.redis.url, namespace=namespace)
        dramatiq.set_broker(broker)

        @dramatiq.actor(broker=broker, actor_name="bare_noop")
        def bare_noop(marker: str | None = None) -> None:
            pass

        actor = bare_noop
    broker.flush_all()
    for i in range(total):
        actor.send(str(i))
    worker = dramatiq.Worker(broker, worker_threads=8)
    started = time.perf_counter()
    worker.start()
    broker.join(actor.queue_name, timeout=300_000)
    worker.join()
    elapsed = time.perf_counter() - started
    worker.stop()
    broker.flush_all()
    broker.close()
    print(json.dumps({"kind": kind, "messages": total, "seconds": elapsed}))


async def latency(total: int, max_gap_ms: int) -> None:
    from spotless.domain import registry
    from spotless.lib.jobs import enqueue
    from spotless.lib.jobs.broker import build_broker
    from spotless.lib.jobs.outbox import OutboxRelay, install_relay
    from spotless.lib.jobs.runtime import build_runtime
    from spotless.lib.redis import create_redis

    settings = load_settings()
    registry.import_jobs()
    broker = build_broker(settings)
    runtime = build_runtime(settings, application_name="bench-latency")
    relay = OutboxRelay(runtime.sessionmaker, broker)
    install_relay(relay)
    records = f"{settings.jobs.namespace}:records"
    # The wait for a record blocks up to 30 s (the worker's start): past the runtime client's socket timeout.
    waiter = create_redis(settings.redis, socket_timeout=35)
    latencies: list[float] = []
    lost = 0
    try:
        await runtime.redis.delete(records)
        for i in range(-3, total):  # three warm-up rounds (worker start, first connections)
            marker = f"latency-{i}"
            async with runtime.sessionmaker() as session, session.begin():
                enqueue(session, "system.record", marker)
            committed = time.perf_counter()  # the commit and its after-commit hook have returned
            while (got := await waiter.blpop([records], timeout=30 if i < 0 else 5)) is not None:
                if got[1].decode() == marker:
                    break
            if got is None:
                lost += 1
                continue
            if i >= 0:
                latencies.append((time.perf_counter() - committed) * 1000)
            await asyncio.sleep(random.uniform(0, max_gap_ms / 1000))  # commits at random, the worker idles between
        await relay.close()
    finally:
        install_relay(None)
        await waiter.aclose()
        await runtime.close()
        broker.close()
    print(json.dumps({"kind": "latency", "latencies_ms": latencies, "lost": lost}))


def steady(seconds: float, rate: int) -> None:
    from spotless.domain import registry
    from spotless.lib.jobs.broker import build_broker

    registry.import_jobs()
    broker = build_broker(load_settings())
    actor = broker.get_actor("system.noop")
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            actor.send(str(sent))
            sent += 1
        time.sleep(0.01)
    broker.close()
    print(json.dumps({"kind": "steady", "messages": sent, "seconds": seconds}))


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        asyncio.run(latency(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 300))
    elif sys.argv[1] == "steady":
        steady(float(sys.argv[2]), int(sys.argv[3]))
    else:
        main(sys.argv[1], int(sys.argv[2]))
