"""Retention's part of the settings (RETENTION_*), read by `load_settings`; kept apart for size."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta


def _var(name: str, **bounds: Any) -> Meta:
    """As settings' `_var`: the bounds and the variable `load_settings` names in its errors."""
    return Meta(extra={"env": name}, **bounds)


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Defaults of every organisation's retention (each can choose its own, within the same
    bounds) and the retention of the system tables, which have no organisation (outbox, inbox).
    Invoices and the ledger have none: accounting law keeps them."""

    # Bodies of delivered messages; the log line (who, when, status) stays.
    message_body_days: Annotated[int, _var("RETENTION_MESSAGE_BODY_DAYS", ge=1, le=3_660)] = 90
    # Expired and failed export rows (their files are gone already: see EXPORT_TTL_HOURS).
    export_days: Annotated[int, _var("RETENTION_EXPORT_DAYS", ge=1, le=3_660)] = 30
    # Job photos of finished visits.
    photo_days: Annotated[int, _var("RETENTION_PHOTO_DAYS", ge=1, le=3_660)] = 365
    # Sent outbox rows and handled inbox events (one retention for everyone).
    outbox_days: Annotated[int, _var("RETENTION_OUTBOX_DAYS", ge=1, le=365)] = 3
    inbox_days: Annotated[int, _var("RETENTION_INBOX_DAYS", ge=1, le=3_660)] = 30
    # Rows removed per statement (each batch its own short transaction).
    batch_size: Annotated[int, _var("RETENTION_BATCH_SIZE", ge=1, le=100_000)] = 1_000
    interval_seconds: Annotated[int, _var("RETENTION_INTERVAL_SECONDS", ge=60, le=7 * 86_400)] = 3_600


def load_retention(env: Any) -> RetentionSettings:
    return RetentionSettings(
        message_body_days=env.int("RETENTION_MESSAGE_BODY_DAYS", 90),
        export_days=env.int("RETENTION_EXPORT_DAYS", 30),
        photo_days=env.int("RETENTION_PHOTO_DAYS", 365),
        outbox_days=env.int("RETENTION_OUTBOX_DAYS", 3),
        inbox_days=env.int("RETENTION_INBOX_DAYS", 30),
        batch_size=env.int("RETENTION_BATCH_SIZE", 1_000),
        interval_seconds=env.int("RETENTION_INTERVAL_SECONDS", 3_600),
    )
