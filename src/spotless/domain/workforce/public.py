"""What other contexts may use of workforce: which workers can take work, and their schedules."""

from spotless.domain.workforce.hours import WorkerSchedule, format_clock, parse_clock
from spotless.domain.workforce.models import Worker
from spotless.domain.workforce.services import (
    active_schedules,
    active_worker_ids,
    get_active_workers,
    get_worker_for_user,
    list_workers,
    schedules,
    team_worker_ids,
    worker_id_of_user,
)

__all__ = [
    "Worker",
    "WorkerSchedule",
    "active_schedules",
    "active_worker_ids",
    "format_clock",
    "get_active_workers",
    "get_worker_for_user",
    "list_workers",
    "parse_clock",
    "schedules",
    "team_worker_ids",
    "worker_id_of_user",
]
