"""Stripe webhook deliveries as Stripe makes them: an event body, signed with the endpoint's secret
(`stripe.WebhookSignature.generate_signature_header`), posted to our endpoint; and the inbox jobs
those deliveries enqueue, run as the worker would."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.lib.inbox import PROCESS_JOB, process_inbox_event

WEBHOOK_SECRET = "whsec_test_spotless_0123456789abcdef"
WEBHOOK_PATH = "/v1/payments/stripe/webhook"

_counter = {"n": 0}


def event_body(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    account: str | None = None,
    created: int | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    _counter["n"] += 1
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    body: dict[str, Any] = {
        "id": event_id or f"evt_test_{int(time.time() * 1000)}_{_counter['n']}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": data,
    }
    if account is not None:
        body["account"] = account
    return body


def sign(raw: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(raw, secret, timestamp=timestamp)


async def deliver(
    client: httpx.AsyncClient,
    body: dict[str, Any] | str,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, str) else json.dumps(body)
    header = signature if signature is not None else sign(raw, secret=secret, timestamp=timestamp)
    headers = {"content-type": "application/json; charset=utf-8"}
    if header:
        headers["stripe-signature"] = header
    return await client.post(WEBHOOK_PATH, content=raw.encode(), headers=headers)


class InboxJobs:
    """The processing jobs deliveries enqueued, taken once each, in outbox order or any order given."""

    def __init__(self, owner_engine: AsyncEngine) -> None:
        self.owner_engine = owner_engine
        self.taken: set[Any] = set()

    async def take(self) -> list[str]:
        async with self.owner_engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, args FROM job_outbox WHERE actor_name = :job ORDER BY id"), {"job": PROCESS_JOB}
            )
            fresh = [(row_id, args) for row_id, args in rows.all() if row_id not in self.taken]
        self.taken.update(row_id for row_id, _ in fresh)
        return [args[0] for _, args in fresh]

    async def run(self, *, reverse: bool = False) -> int:
        ids = await self.take()
        for event_id in reversed(ids) if reverse else ids:
            with contextlib.suppress(Exception):
                await process_inbox_event(event_id)
        return len(ids)


async def inbox_rows(owner_engine: AsyncEngine) -> list[dict[str, Any]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, event_type, payload, outcome, handled_at, last_error FROM inbox_events"
                " WHERE source = 'stripe' ORDER BY received_at"
            )
        )
        return [dict(r._mapping) for r in rows.all()]


async def outbox_jobs(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM job_outbox WHERE actor_name = :j"), {"j": PROCESS_JOB}))
