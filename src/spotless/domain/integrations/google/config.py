"""The Google Calendar settings this package reads, in one place (the settings group itself is the
integrations core's: `spotless.integration_settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spotless.settings import Settings


@dataclass(frozen=True)
class GcalConfig:
    api_base_url: str
    sync_interval_seconds: int
    initial_days: int
    future_days: int
    backfill_minutes: int
    webhook_url: str
    channel_ttl_seconds: int
    timeout_seconds: float = 10.0
    max_rate_retries: int = 3
    backoff_base_seconds: float = 1.0


def _group(settings: Settings) -> Any:
    return settings.integrations  # type: ignore[attr-defined]


def gcal_config(settings: Settings) -> GcalConfig:
    group = _group(settings)
    return GcalConfig(
        api_base_url=group.google_api_base_url,
        sync_interval_seconds=group.gcal_sync_interval_seconds,
        initial_days=group.gcal_sync_initial_days,
        future_days=group.gcal_sync_future_days,
        backfill_minutes=group.gcal_sync_backfill_minutes,
        webhook_url=getattr(group, "gcal_webhook_url", "") or "",
        channel_ttl_seconds=getattr(group, "gcal_channel_ttl_seconds", 7 * 86_400),
    )
