"""Scheduler entry point: `python -m workers.scheduler`. Fires periodic slots (claimed in Redis so
several schedulers never double-fire), sweeps the outbox for jobs the API could not hand over, and
puts the messages of dead (killed) workers back in their queues."""

from __future__ import annotations

import asyncio
import logging
import signal

from spotless.domain import registry
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay
from spotless.lib.jobs.registry import discover_schedule
from spotless.lib.jobs.runtime import build_runtime
from spotless.lib.jobs.scheduler import Scheduler, maintain_broker_forever
from spotless.lib.logging import configure_logging
from spotless.lib.metrics_exporter import serve_process_metrics
from spotless.settings import load_settings

logger = logging.getLogger("spotless.scheduler")


async def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    registry.import_jobs()
    serve_process_metrics(settings.metrics)
    broker = build_broker(settings)
    runtime = build_runtime(settings, application_name="spotless-scheduler")
    scheduler = Scheduler(
        runtime.redis, broker, settings.jobs.namespace, runtime.runner_id, discover_schedule(settings)
    )
    relay = OutboxRelay(runtime.sessionmaker, broker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info("scheduler started", extra={"runner_id": runtime.runner_id})
    try:
        await asyncio.gather(
            scheduler.run_forever(stop),
            relay.sweep_forever(settings.jobs.outbox_relay_interval_seconds, stop),
            maintain_broker_forever(broker, settings.jobs.broker_maintenance_interval_seconds, stop),
        )
    finally:
        await runtime.close()
        broker.close()


if __name__ == "__main__":
    asyncio.run(main())
