"""Dramatiq worker entry point: `dramatiq workers.worker --processes 2 --threads 8`.

Importing this module configures the broker first and only then binds the jobs, so no actor can
fall back to Dramatiq's default broker."""

from spotless.domain import registry
from spotless.lib.heap import freeze_startup_heap
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.runtime import relay_commits_through
from spotless.lib.logging import configure_logging
from spotless.settings import load_settings

settings = load_settings()
configure_logging(settings.log_level)
registry.import_jobs()
broker = build_broker(settings)
relay_commits_through(broker)  # a job's commit hands its own jobs over at once
freeze_startup_heap()  # what the jobs and the broker built stays out of every full collection
