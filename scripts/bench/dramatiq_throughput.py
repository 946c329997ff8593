"""Messages/s through a worker: `python -m scripts.bench.dramatiq_throughput ours|bare N`.

Run in its own process so each broker is the only global broker. Enqueues N messages, then times a
worker (8 threads) draining them. Prints JSON."""

from __future__ import annotations

import json
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


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
