"""The one list of bounded contexts: their controllers, models (for alembic) and jobs (for workers).
Adding a domain means adding it here."""

from __future__ import annotations

from typing import Any


def controllers() -> list[Any]:
    from spotless.domain.system.controllers import HealthController, MetricsController, StatusController

    return [HealthController, MetricsController, StatusController]


def import_models() -> None:
    import spotless.domain.system.models
    import spotless.lib.jobs.outbox  # noqa: F401


def import_jobs() -> None:
    import spotless.domain.system.actors  # noqa: F401
