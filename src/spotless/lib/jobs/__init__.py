"""The jobs platform: declare with `job` (queue, retries, time limit and schedule in one place),
request with the typed handle it returns (`handle.enqueue(session, ...)`) or the low-level
`enqueue(session, name, ...)`, inside a transaction. Nothing reaches the broker unless that
transaction commits."""

from spotless.lib.jobs.outbox import enqueue
from spotless.lib.jobs.registry import JOBS, Job, daily, job, weekly

__all__ = ["JOBS", "Job", "daily", "enqueue", "job", "weekly"]
