"""The retry schedule: about three days, jittered; Retry-After read and bounded."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from spotless.domain.webhooks.delivery import MAX_ATTEMPTS, RETRY_SCHEDULE, parse_retry_after, retry_delay
from spotless.settings import ConfigError, load_settings


def test_the_schedule_spans_about_three_days() -> None:
    total = sum(RETRY_SCHEDULE)
    assert timedelta(days=2.5) < timedelta(seconds=total) < timedelta(days=3.5)
    assert len(RETRY_SCHEDULE) + 1 == MAX_ATTEMPTS
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)


def test_delays_are_jittered_within_ten_percent() -> None:
    rng = random.Random(7)
    delays = {retry_delay(3, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(0.9 * RETRY_SCHEDULE[2] <= d <= 1.1 * RETRY_SCHEDULE[2] for d in delays)


def test_retry_after_in_seconds_or_as_a_date_capped_at_a_day() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(minutes=10), usegmt=True), now) == 600
    assert parse_retry_after("9999999", now) == 24 * 3600
    assert parse_retry_after("0", now) == 1
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_production_refuses_the_test_only_webhook_settings() -> None:
    base = {
        "APP_ENV": "prod",
        "DATABASE_URL": "postgresql://u:p@db.example.com/x",
        "REDIS_URL": "rediss://cache.example.com:6379/0",
        "WEBHOOK_ALLOW_LOOPBACK": "true",
        "WEBHOOK_ALLOW_HTTP": "true",
    }
    try:
        load_settings(base)
    except ConfigError as exc:
        text = str(exc)
    else:  # pragma: no cover
        raise AssertionError("prod accepted loopback webhooks")
    assert "WEBHOOK_ALLOW_LOOPBACK" in text and "WEBHOOK_ALLOW_HTTP" in text and "WEBHOOK_SECRET_KEY" in text
