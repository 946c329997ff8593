"""The jobs platform: declare with `job`, request with `enqueue(session, name, ...)` inside a
transaction. Nothing reaches the broker unless that transaction commits."""

from spotless.lib.jobs.outbox import enqueue
from spotless.lib.jobs.registry import JOBS, job

__all__ = ["JOBS", "enqueue", "job"]
