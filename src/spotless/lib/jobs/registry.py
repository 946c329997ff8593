"""Job declarations. Declaring a job does not touch a broker: `build_broker` binds them per process,
so importing a domain's actors never creates a default broker by accident."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Any]
    queue: str = DEFAULT_QUEUE
    max_retries: int = 10
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 15 * 60_000
    time_limit_ms: int = 5 * 60_000
    max_age_ms: int | None = 24 * 3_600_000
    options: dict[str, Any] = field(default_factory=dict)


JOBS: dict[str, JobSpec] = {}


def job(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = 10,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 15 * 60_000,
    time_limit_ms: int = 5 * 60_000,
    max_age_ms: int | None = 24 * 3_600_000,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an idempotent job named `domain.verb`; it takes ids and opens its own session."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in JOBS and JOBS[name].fn is not fn:
            raise ValueError(f"job {name!r} is declared twice")
        JOBS[name] = JobSpec(
            name=name,
            fn=fn,
            queue=queue,
            max_retries=max_retries,
            min_backoff_ms=min_backoff_ms,
            max_backoff_ms=max_backoff_ms,
            time_limit_ms=time_limit_ms,
            max_age_ms=max_age_ms,
        )
        return fn

    return decorate


def get_job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}") from None


@dataclass(frozen=True)
class Periodic:
    job_name: str
    every_seconds: int


SCHEDULE: dict[str, Periodic] = {}


def periodic(job_name: str, every_seconds: int) -> None:
    """Ask the scheduler to send `job_name(slot=<iso>)` once per `every_seconds` slot, cluster-wide."""
    SCHEDULE[job_name] = Periodic(job_name=job_name, every_seconds=every_seconds)
