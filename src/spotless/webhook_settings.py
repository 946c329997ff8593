"""Outgoing webhooks' part of the settings (spotless.settings reads it with the rest; kept apart for size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

# Dev and test only: production refuses it (prod_problems) and must set its own.
PLACEHOLDER_KEY = "dev-insecure-webhook-key-change-me-0123456789"


def _var(name: str, **bounds: Any) -> Meta:
    return Meta(extra={"env": name}, **bounds)


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Encrypts every endpoint's signing secret at rest (AES-256-GCM under a key derived from it).
    # Changing it makes the stored secrets unreadable: endpoints then need a rotation.
    secret_key: str = PLACEHOLDER_KEY
    # Plain http:// receivers: off by default (and in prod); tests turn it on for the local receiver.
    allow_http: bool = False
    # Loopback receivers (127.0.0.0/8, ::1): tests only, refused in prod. Private, link-local and
    # metadata addresses stay refused whatever is set.
    allow_loopback: bool = False
    # One attempt's whole budget (connect, send, answer).
    timeout_seconds: Annotated[float, _var("WEBHOOK_TIMEOUT_SECONDS", gt=0, le=60)] = 15.0
    # How much of a receiver's answer the delivery log keeps.
    response_log_bytes: Annotated[int, _var("WEBHOOK_RESPONSE_LOG_BYTES", ge=0, le=65_536)] = 2_048
    # After a rotation the previous secret still signs for this long (both signatures are sent).
    rotation_grace_hours: Annotated[int, _var("WEBHOOK_ROTATION_GRACE_HOURS", ge=0, le=24 * 30)] = 24
    # An endpoint failing without a single success for this long is disabled (the owner is told).
    disable_after_hours: Annotated[int, _var("WEBHOOK_DISABLE_AFTER_HOURS", ge=1, le=24 * 30)] = 120
    # How often the retry sweep looks for messages due again.
    sweep_interval_seconds: Annotated[int, _var("WEBHOOK_SWEEP_INTERVAL_SECONDS", ge=1, le=3_600)] = 10
    # Endpoints per organisation.
    max_endpoints: Annotated[int, _var("WEBHOOK_MAX_ENDPOINTS", ge=1, le=1_000)] = 20


def load_webhook_settings(env: Any, is_prod: bool) -> WebhookSettings:
    defaults = WebhookSettings()
    return WebhookSettings(
        secret_key=env.str("WEBHOOK_SECRET_KEY", "" if is_prod else defaults.secret_key) or "",
        allow_http=env.bool("WEBHOOK_ALLOW_HTTP", False),
        allow_loopback=env.bool("WEBHOOK_ALLOW_LOOPBACK", False),
        timeout_seconds=env.float("WEBHOOK_TIMEOUT_SECONDS", defaults.timeout_seconds),
        response_log_bytes=env.int("WEBHOOK_RESPONSE_LOG_BYTES", defaults.response_log_bytes),
        rotation_grace_hours=env.int("WEBHOOK_ROTATION_GRACE_HOURS", defaults.rotation_grace_hours),
        disable_after_hours=env.int("WEBHOOK_DISABLE_AFTER_HOURS", defaults.disable_after_hours),
        sweep_interval_seconds=env.int("WEBHOOK_SWEEP_INTERVAL_SECONDS", defaults.sweep_interval_seconds),
        max_endpoints=env.int("WEBHOOK_MAX_ENDPOINTS", defaults.max_endpoints),
    )


def webhook_prod_problems(webhooks: WebhookSettings, secret_weakness: Callable[[str], str | None]) -> list[str]:
    problems = []
    weakness = secret_weakness(webhooks.secret_key)
    if weakness:
        problems.append(
            f"WEBHOOK_SECRET_KEY {weakness}; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if webhooks.allow_loopback:
        problems.append("WEBHOOK_ALLOW_LOOPBACK=true lets webhooks reach this machine; it is for tests only")
    if webhooks.allow_http:
        problems.append("WEBHOOK_ALLOW_HTTP=true sends signed events in clear text; receivers must use https in prod")
    return problems
