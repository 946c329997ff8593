"""Bodies of /v1/webhooks/...: endpoints (the secret only in the answer that makes it), messages,
attempts and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from spotless.domain.webhooks.catalog import EVENT_TYPE_NAMES
from spotless.domain.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from spotless.lib.schema import NO_NUL, Input, Output

EventTypeName = Literal[EVENT_TYPE_NAMES]  # type: ignore[valid-type]
EventTypes = Annotated[list[EventTypeName], Meta(min_length=1, max_length=len(EVENT_TYPE_NAMES))]
Url = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=2_000,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00]+$",
        description="the receiver's https:// URL, on a public address",
        examples=["https://hooks.example.com/spotless"],
    ),
]
Description = Annotated[str, Meta(max_length=500, pattern=NO_NUL)]


class EventTypeRead(Output):
    name: str
    description: str


class EndpointCreate(Input):
    url: Url
    event_types: EventTypes
    description: Description | None = None
    enabled: bool = True


class EndpointUpdate(Input):
    url: Url | UnsetType = UNSET
    event_types: EventTypes | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    # Re-enabling clears the failure streak; disabling fails the messages still waiting.
    enabled: bool | UnsetType = UNSET


class EndpointRead(Output):
    id: UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None  # manual | gone (answered 410) | failing (kept failing)
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: WebhookEndpoint) -> EndpointRead:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            failing_since=row.failing_since,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class EndpointCreated(EndpointRead):
    # `whsec_...`: shown in this answer only; verify deliveries with it (Standard Webhooks).
    secret: str


class SecretRotated(Output):
    endpoint_id: UUID
    # The new secret (this answer only). The previous one keeps signing until `previous_expires_at`.
    secret: str
    previous_expires_at: datetime | None


class MessageRead(Output):
    id: UUID
    webhook_id: str  # the `webhook-id` header, the same on every attempt and replay
    endpoint_id: UUID
    event_type: str
    status: str  # pending | delivered | failed
    attempts: int  # attempts in the current round (a replay starts a new one)
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]  # the body sent: type, timestamp, data

    @classmethod
    def from_model(cls, row: WebhookMessage) -> MessageRead:
        return cls(
            id=row.id,
            webhook_id=f"msg_{row.id.hex}",
            endpoint_id=row.endpoint_id,
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
            payload=msgspec.json.decode(row.body),
        )


class AttemptRead(Output):
    id: UUID
    attempt: int
    started_at: datetime
    latency_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None  # the start of the answer (WEBHOOK_RESPONSE_LOG_BYTES)

    @classmethod
    def from_model(cls, row: WebhookAttempt) -> AttemptRead:
        return cls(
            id=row.id,
            attempt=row.attempt,
            started_at=row.started_at,
            latency_ms=row.latency_ms,
            status_code=row.status_code,
            error=row.error,
            response_body=row.response_body,
        )


class ReplayRange(Input):
    since: datetime
    until: datetime
    # Only the messages that failed (default), or every message of the window.
    only_failed: bool = True


class ReplayAccepted(Output):
    status: str  # queued
    messages: int
