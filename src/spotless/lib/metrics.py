"""Process-wide Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (before start), /metrics
aggregates every API and worker process; gauges declare how processes combine."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_5XX = Counter("http_5xx_total", "Server error responses", ["method", "path"])
JOB_RUNNER_UP = Gauge("job_runner_up", "1 while the scheduler tick succeeds", ["job"], multiprocess_mode="mostrecent")
HEARTBEAT_AGE = Gauge(
    "job_heartbeat_age_seconds",
    "Age of the scheduler heartbeat when last read",
    ["job"],
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "dramatiq_dead_letters", "Messages in the dead-letter queues", ["queue_name"], multiprocess_mode="mostrecent"
)
OUTBOX_PENDING = Gauge(
    "job_outbox_pending", "Jobs committed but not yet handed to the broker", multiprocess_mode="mostrecent"
)
OUTBOX_RELAYED = Counter("job_outbox_relayed_total", "Outbox rows handed to the broker")
OUTBOX_RELAY_ERRORS = Counter("job_outbox_relay_errors_total", "Failed attempts to hand outbox rows over")
JOB_MESSAGES = Counter("dramatiq_messages_total", "Messages processed", ["queue_name", "actor_name", "outcome"])
JOB_DURATION = Histogram(
    "dramatiq_message_duration_seconds",
    "Time spent processing a message",
    ["queue_name", "actor_name"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOB_RETRIES = Counter("dramatiq_message_retries_total", "Messages retried", ["queue_name", "actor_name"])
SCHEDULER_FIRED = Counter("scheduler_slots_fired_total", "Periodic slots claimed and sent", ["job"])
BOOKINGS = Counter("bookings_total", "Booking lifecycle events, counted once their transaction commits", ["action"])
HTTP_429 = Counter("http_429_total", "Requests refused by the rate limiter", ["bucket"])
RATELIMIT_BACKEND_ERRORS = Counter(
    "ratelimit_backend_errors_total", "Rate-limit decisions or probes Redis failed or answered too slowly", ["reason"]
)
RATELIMIT_FALLBACK_ACTIVE = Gauge(
    "ratelimit_fallback_active",
    "1 while a process limits from its own memory because Redis is unavailable",
    multiprocess_mode="livemax",
)
SCHEDULED_RUNS = Counter(
    "scheduled_runs_total",
    "Deliveries of periodic (job, slot) runs: claimed (ran), skipped (done or running elsewhere), failed",
    ["job", "outcome"],
)
SERIES_MATERIALISE_FAILURES = Counter(
    "series_materialise_failures_total",
    "Recurring series the materialiser could not expand (left due, retried after a back-off)",
    ["reason"],
)
DB_COMMIT_FAILURES = Counter(
    "db_commit_failures_total",
    "Request commits the database refused or lost; each answered a problem, never a 2xx",
    ["reason"],
)
