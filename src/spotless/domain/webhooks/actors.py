"""Outgoing webhooks' jobs.

- `webhooks.fan_out` hears every public event: one message per enabled endpoint of the
  organisation that asked for that type, in one transaction, unique on (endpoint, event id) so a
  redelivered event makes none twice; each new message is queued for delivery with its lease.
- `webhooks.deliver` sends one message once (delivery.py) and logs the attempt.
- `webhooks.retry_due` (every WEBHOOK_SWEEP_INTERVAL_SECONDS) queues the messages due again and
  those whose queued or in-flight lease ran out (a worker died, Redis lost a message)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from uuid_utils.compat import uuid7

from spotless.domain.webhooks import addresses, delivery
from spotless.domain.webhooks.catalog import PUBLIC_EVENTS, PUBLIC_NAME, public_data
from spotless.domain.webhooks.models import WebhookEndpoint, WebhookMessage
from spotless.lib.events import Event, subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.metrics import WEBHOOK_DELIVERIES
from spotless.settings import Settings

logger = logging.getLogger("spotless.webhooks")

DELIVER_JOB = "webhooks.deliver"
SWEEP_JOB = "webhooks.retry_due"
SWEEP_BATCH = 500


def occurred_at(event_id: str) -> datetime:
    """When the event was emitted: its id is a UUIDv7, whose first 48 bits are that moment (ms),
    so every endpoint and every redelivery states the same time."""
    try:
        value = uuid.UUID(event_id)
    except ValueError:
        return datetime.now(UTC)
    if value.version != 7:
        return datetime.now(UTC)
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


@subscriber(
    *(cls for cls, _ in PUBLIC_EVENTS.values()),
    name="webhooks.fan_out",
    max_retries=10,
    time_limit_ms=60_000,
)
async def fan_out(event: Event, event_id: str) -> None:
    public = PUBLIC_NAME[event.event_name]
    org_id: UUID = event.org_id  # type: ignore[attr-defined]
    rt = get_runtime()
    now = datetime.now(UTC)
    body = delivery.body_for(public, occurred_at(event_id), public_data(event))
    async with rt.session(org_id) as session:
        endpoints = (
            await session.execute(
                select(WebhookEndpoint.id).where(
                    WebhookEndpoint.org_id == org_id,
                    WebhookEndpoint.enabled.is_(True),
                    WebhookEndpoint.event_types.contains([public]),
                )
            )
        ).scalars()
        for endpoint_id in endpoints:
            token = uuid.uuid4()
            created = (
                await session.execute(
                    insert(WebhookMessage)
                    .values(
                        id=uuid7(),
                        org_id=org_id,
                        endpoint_id=endpoint_id,
                        event_id=event_id,
                        event_type=public,
                        body=body,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        lease_token=token,
                        leased_until=now + delivery.QUEUE_LEASE,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(constraint="uq_webhook_messages_event")
                    .returning(WebhookMessage.id)
                )
            ).scalar_one_or_none()
            if created is not None:
                deliver.enqueue(session, org_id, created, token)


@job(DELIVER_JOB, max_retries=3, min_backoff_ms=5_000, time_limit_ms=120_000, max_age_ms=7 * 24 * 3_600_000)
async def deliver(org_id: UUID, message_id: UUID, token: UUID) -> None:
    rt = get_runtime()
    settings = rt.settings.webhooks
    now = datetime.now(UTC)
    async with rt.session(org_id) as session:
        claimed = await delivery.claim(session, message_id, token, settings, now)
    if claimed is None:
        return
    started_at = datetime.now(UTC)
    outcome = await delivery.send(
        claimed.endpoint.url,
        delivery.signing_headers(claimed),
        claimed.message.body.encode(),
        settings,
        resolver=addresses.current_resolver(),
    )
    async with rt.session(org_id) as session:
        await delivery.record(session, claimed, outcome, started_at, settings, datetime.now(UTC))
    WEBHOOK_DELIVERIES.labels(outcome=_outcome_label(outcome)).inc()


def _outcome_label(outcome: delivery.Outcome) -> str:
    if outcome.delivered:
        return "delivered"
    if outcome.status_code == 410:
        return "gone"
    if outcome.error and outcome.error.startswith("address refused"):
        return "refused"
    return "failed"


def _sweep_every(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhooks.sweep_interval_seconds)


async def queue_due(limit: int = SWEEP_BATCH) -> int:
    """Queue every message due (across organisations: a SECURITY DEFINER function claims them
    and returns only their ids and fresh lease tokens)."""
    rt = get_runtime()
    queued = 0
    while True:
        async with rt.session() as session:
            rows = list(
                await session.execute(
                    text("SELECT org_id, message_id, token FROM webhook_claim_due(:limit, :lease)"),
                    {"limit": limit, "lease": int(delivery.QUEUE_LEASE.total_seconds())},
                )
            )
            for org_id, message_id, token in rows:
                deliver.enqueue(session, org_id, message_id, token)
        queued += len(rows)
        if len(rows) < limit:
            return queued


@job(SWEEP_JOB, every=_sweep_every, max_retries=0, time_limit_ms=60_000, max_age_ms=120_000)
async def retry_due(slot: str | None = None) -> None:
    queued = await queue_due()
    if queued:
        logger.info("webhooks: %d message(s) queued for another attempt", queued)
