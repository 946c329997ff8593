"""Process-wide Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (before start), /metrics
aggregates every API and worker process; gauges declare how processes combine.

Two rules keep a scrape small and useful:
- Label values come from small fixed sets (route templates, never raw paths; no status code on a
  histogram, whose ~14 lines per series multiply with every label value).
- Every series an alert or a dashboard in the operations guides names exists from process start, at
  0 (`_export_from_start`, `export_route_series`): a labelled counter that was never incremented is
  absent from the scrape, and an alert on it sees nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "http_requests_total", "Requests by route template and status", ["method", "path", "status_code"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Request latency by route template",
    ["method", "path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
HTTP_IN_PROGRESS = Gauge("http_requests_in_progress", "Requests being served", multiprocess_mode="livesum")
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

WEBHOOK_EVENTS = Counter("webhook_events_total", "Incoming webhook events by result", ["result"])
WEBHOOK_ERRORS = Counter("webhook_errors_total", "Incoming webhook events refused or failed")
# Outgoing (integrators' endpoints): delivered | failed | gone (410) | refused (address not public)
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Outgoing webhook attempts by outcome", ["outcome"])
EMAIL_JOBS = Counter("email_jobs_total", "Emails handled by kind and outcome", ["job", "status"])

# The label values the operations guides document (and alerts select on).
WEBHOOK_RESULTS = ("processed", "ignored", "error")
# Identity's message kinds (messaging.deliver labels by kind): the sign-in emails alerts watch.
EMAIL_JOB_KINDS = ("identity.password_reset", "identity.invitation", "identity.temp_password_reset")
EMAIL_STATUSES = ("sent", "skipped", "error")
BOOKING_ACTIONS = ("created", "confirmed", "cancelled", "completed", "no_show")


STORAGE_JANITOR_PHOTOS = Counter("storage_janitor_photos_total", "Photo rows the storage janitor removed", ["reason"])
STORAGE_JANITOR_DELETES = Counter(
    "storage_janitor_deletes_total", "Object deletions the storage janitor attempted", ["outcome"]
)
# The guides' "storage delete retry queue": objects waiting to be deleted (due or not).
STORAGE_DELETE_QUEUE = Gauge(
    "storage_delete_queue", "Objects queued for deletion when last counted", multiprocess_mode="mostrecent"
)
JANITOR_REASONS = ("unconfirmed", "retention")
JANITOR_OUTCOMES = ("deleted", "failed")


def _export_from_start() -> None:
    """Create each documented series at 0 (`.labels()` writes the sample; nothing is counted)."""
    for result in WEBHOOK_RESULTS:
        WEBHOOK_EVENTS.labels(result=result)
    for kind in EMAIL_JOB_KINDS:
        for status in EMAIL_STATUSES:
            EMAIL_JOBS.labels(job=kind, status=status)
    for action in BOOKING_ACTIONS:
        BOOKINGS.labels(action=action)
    for reason in JANITOR_REASONS:
        STORAGE_JANITOR_PHOTOS.labels(reason=reason)
    for outcome in JANITOR_OUTCOMES:
        STORAGE_JANITOR_DELETES.labels(outcome=outcome)
    # Not `job_runner_up`: it is the scheduler's to write ("mostrecent" across processes). A 0 set
    # here would read as "runner down" wherever the API cannot see the scheduler's files.


_export_from_start()


def export_route_series(routes: Iterable[tuple[str, str]]) -> None:
    """`http_5xx_total` at 0 for every (method, route template) the app serves."""
    for method, path in routes:
        HTTP_5XX.labels(method=method, path=path)


# Not measured as requests: scraping must not count itself (the access log still has it).
METRICS_EXCLUDED = frozenset({"/metrics"})

# Labelled children by label values: `.labels()` validates and locks on every call; the values come
# from small fixed sets (route templates, methods, statuses), so these stay small.
_REQUEST_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_5XX_CHILDREN: dict[tuple[str, str], Any] = {}


def record_request(method: str, route: str, status: int, seconds: float, measured: bool = True) -> None:
    """One request's metrics, from the outermost middleware (lib/logging.py `RequestObserver`), which
    captured its status once: `http_requests_total` and the latency histogram (when `measured`: a
    matched route other than /metrics, metrics on), and `http_5xx_total` for a server error.
    Requests that matched no route are not measured: each scanner's path would be a new series."""
    if measured:
        key = (method, route, status)
        children = _REQUEST_CHILDREN.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method=method, path=route, status_code=str(status)),
                HTTP_DURATION.labels(method=method, path=route),
            )
            _REQUEST_CHILDREN[key] = children
        children[0].inc()
        children[1].observe(seconds)
    if status >= 500:
        child = _5XX_CHILDREN.get((method, route))
        if child is None:
            child = _5XX_CHILDREN[(method, route)] = HTTP_5XX.labels(method=method, path=route)
        child.inc()
