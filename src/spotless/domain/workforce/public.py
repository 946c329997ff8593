"""What other contexts may use of workforce: which workers can take work, and their schedules;
the calendar integration writes workers' outside busy time through `external_busy`."""

from spotless.domain.workforce.external_busy import (
    BusyBlock,
    StoredBusy,
    clear_external_busy,
    external_busy_of,
    remove_external_busy,
    upsert_external_busy,
)
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
    "BusyBlock",
    "StoredBusy",
    "Worker",
    "WorkerSchedule",
    "active_schedules",
    "active_worker_ids",
    "clear_external_busy",
    "external_busy_of",
    "format_clock",
    "get_active_workers",
    "get_worker_for_user",
    "list_workers",
    "parse_clock",
    "remove_external_busy",
    "schedules",
    "team_worker_ids",
    "upsert_external_busy",
    "worker_id_of_user",
]
