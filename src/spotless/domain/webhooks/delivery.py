"""Sending one message once: resolve and check the address, sign, POST to the checked address,
log the attempt, decide what next.

- The connection goes to the address `addresses.resolve_target` checked, with the endpoint's
  name kept for TLS (SNI and certificate) and the Host header: no second lookup to rebind.
- No redirect is followed (a 3xx is a failure), proxies from the environment are ignored, and
  every attempt has one overall time budget (WEBHOOK_TIMEOUT_SECONDS).
- 2xx delivered; 410 Gone disables the endpoint; 429/502/504 with Retry-After wait that long;
  anything else waits the next step of `RETRY_SCHEDULE` with jitter (about three days in all).
- An endpoint failing without any success for WEBHOOK_DISABLE_AFTER_HOURS is disabled, and
  `EndpointDisabled` is emitted for whoever tells the owner.

A message is claimed with its lease token (`claim`); a second delivery of the same job, or a
worker that lost its lease, finds another token and sends nothing."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.webhooks import addresses, signing
from spotless.domain.webhooks.addresses import AddressRefused, Resolver
from spotless.domain.webhooks.events import EndpointDisabled
from spotless.domain.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, WebhookSecret
from spotless.domain.webhooks.secret_store import unseal
from spotless.lib.events import emit
from spotless.webhook_settings import WebhookSettings

logger = logging.getLogger("spotless.webhooks.delivery")

# Wait after attempt n (1-based) failed: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h
# (about 75 hours, a little over three days); the tenth failure is final.
RETRY_SCHEDULE: tuple[int, ...] = (5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1
THROTTLE_STATUSES = frozenset({429, 502, 504})
MAX_RETRY_AFTER_SECONDS = 24 * 3_600
# Between being queued and being claimed: after this the sweep queues the message again.
QUEUE_LEASE = timedelta(minutes=5)
USER_AGENT = "Spotless-Webhooks/1.0"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    response_body: str | None
    latency_ms: int
    retry_after: int | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based), jittered by +-10 %."""
    base = RETRY_SCHEDULE[min(attempt, len(RETRY_SCHEDULE)) - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


def parse_retry_after(value: str | None, now: datetime) -> int | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int((when - now).total_seconds())
    return max(1, min(seconds, MAX_RETRY_AFTER_SECONDS))


def message_id_header(message_id: UUID) -> str:
    """`webhook-id`: the message's own id, the same on every attempt and replay."""
    return f"msg_{message_id.hex}"


def pinned_request(target: addresses.Target, url: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL with the checked address as host, the Host header and TLS name of the original."""
    original = httpx.URL(url)
    pinned = original.copy_with(host=target.address)
    default_port = 443 if target.scheme == "https" else 80
    name = f"[{target.host}]" if ":" in target.host else target.host
    host_header = name if target.port == default_port else f"{name}:{target.port}"
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


async def send(
    url: str,
    headers: dict[str, str],
    body: bytes,
    settings: WebhookSettings,
    *,
    resolver: Resolver = addresses.system_resolver,
    transport: httpx.AsyncBaseTransport | None = None,
    trust: ssl.SSLContext | None = None,
) -> Outcome:
    """One attempt. `trust`: the certificates a receiver must chain to (default: the system's,
    with hostname checks against the URL's name, not the pinned address)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = await addresses.resolve_target(
            url,
            allow_http=settings.allow_http,
            allow_loopback=settings.allow_loopback,
            resolver=resolver,
            resolve_seconds=min(5.0, settings.timeout_seconds),
        )
    except AddressRefused as exc:
        return Outcome(status_code=None, error=f"address refused: {exc}", response_body=None, latency_ms=elapsed())
    pinned, host_header, extensions = pinned_request(target, url)
    limit = settings.response_log_bytes
    try:
        async with (
            asyncio.timeout(settings.timeout_seconds),
            httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                verify=trust if trust is not None else True,
                timeout=settings.timeout_seconds,
                transport=transport,
            ) as client,
        ):
            request = client.build_request(
                "POST",
                pinned,
                content=body,
                headers={**headers, **host_header, "user-agent": USER_AGENT},
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                kept = bytearray()
                if response.is_stream_consumed:  # a transport that answered with the body in memory
                    kept.extend(response.content[:limit])
                else:
                    # Only the start of the answer is read: a receiver cannot make us hold more.
                    async for chunk in response.aiter_raw():
                        kept.extend(chunk)
                        if len(kept) >= limit:
                            break
            finally:
                await response.aclose()
    except TimeoutError:
        return Outcome(None, f"timed out after {settings.timeout_seconds:g} s", None, elapsed())
    except httpx.HTTPError as exc:
        return Outcome(None, f"{exc.__class__.__name__}: {exc}"[:500], None, elapsed())
    text = bytes(kept[:limit]).decode("utf-8", errors="replace")
    retry_after = (
        parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        if response.status_code in THROTTLE_STATUSES
        else None
    )
    error = None
    if 300 <= response.status_code < 400:
        error = f"redirect to {response.headers.get('location', '?')[:200]} not followed"
    return Outcome(response.status_code, error, text, elapsed(), retry_after)


def body_for(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )


@dataclass(frozen=True)
class Claimed:
    message: WebhookMessage
    endpoint: WebhookEndpoint
    secrets: list[str]
    token: UUID


async def claim(
    session: AsyncSession, message_id: UUID, token: UUID, settings: WebhookSettings, now: datetime
) -> Claimed | None:
    """Take the message for one attempt if `token` is still its lease (else someone else has it,
    or it is done). The attempt is counted now: a worker dying mid-send still spends one."""
    own = uuid.uuid4()
    claimed = (
        await session.execute(
            update(WebhookMessage)
            .where(
                WebhookMessage.id == message_id,
                WebhookMessage.lease_token == token,
                WebhookMessage.status == "pending",
            )
            .values(
                lease_token=own,
                leased_until=now + timedelta(seconds=settings.timeout_seconds + 60),
                attempts=WebhookMessage.attempts + 1,
            )
            .returning(WebhookMessage)
        )
    ).scalar_one_or_none()
    if claimed is None:
        return None
    endpoint = await session.get_one(WebhookEndpoint, claimed.endpoint_id)
    if not endpoint.enabled:
        claimed.status, claimed.lease_token, claimed.leased_until = "failed", None, None
        claimed.last_error = "endpoint disabled"
        return None
    rows = (
        await session.execute(
            select(WebhookSecret)
            .where(
                WebhookSecret.endpoint_id == endpoint.id,
                (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now),
            )
            .order_by(WebhookSecret.expires_at.desc().nulls_first())
        )
    ).scalars()
    secrets = [unseal(settings.secret_key, endpoint.org_id, endpoint.id, row.sealed) for row in rows]
    return Claimed(message=claimed, endpoint=endpoint, secrets=secrets, token=own)


def signing_headers(claimed: Claimed, now: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for this attempt: its own timestamp, one signature per live secret."""
    timestamp = int((now or datetime.now(UTC)).timestamp())
    return signing.headers(
        claimed.secrets, message_id_header(claimed.message.id), timestamp, claimed.message.body.encode()
    )


async def disable_endpoint(session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    """Stop an endpoint: its waiting messages fail (replayable once it is back) and, unless an
    operator did it, the owner is told."""
    if not endpoint.enabled:
        return
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    await session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.status == "pending")
        .values(status="failed", lease_token=None, leased_until=None, last_error="endpoint disabled")
    )
    if reason != "manual":
        emit(
            session,
            EndpointDisabled(
                org_id=endpoint.org_id, endpoint_id=endpoint.id, url=endpoint.url, reason=reason, disabled_at=now
            ),
        )
    logger.warning("webhook endpoint %s disabled (%s)", endpoint.id, reason)


async def record(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    started_at: datetime,
    settings: WebhookSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> None:
    """Log the attempt and move the message and its endpoint on."""
    message_id = claimed.message.id
    message = await session.get_one(WebhookMessage, message_id, with_for_update=True, populate_existing=True)
    endpoint = await session.get_one(WebhookEndpoint, claimed.endpoint.id, with_for_update=True, populate_existing=True)
    session.add(
        WebhookAttempt(
            org_id=message.org_id,
            message_id=message.id,
            endpoint_id=endpoint.id,
            attempt=claimed.message.attempts,
            started_at=started_at,
            latency_ms=outcome.latency_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.response_body,
        )
    )
    if message.lease_token != claimed.token:
        return  # our lease ran out and the message moved on: the log keeps what we saw
    message.lease_token, message.leased_until = None, None
    message.last_status_code, message.last_error = outcome.status_code, outcome.error
    if outcome.delivered:
        message.status, message.delivered_at, message.next_attempt_at = "delivered", now, None
        endpoint.failing_since = None
        return
    if outcome.status_code == 410:
        message.status, message.next_attempt_at = "failed", None
        await disable_endpoint(session, endpoint, "gone", now)
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if message.attempts >= MAX_ATTEMPTS:
        message.status, message.next_attempt_at = "failed", None
    else:
        wait = float(outcome.retry_after) if outcome.retry_after is not None else retry_delay(message.attempts, rng)
        message.next_attempt_at = now + timedelta(seconds=wait)
    if endpoint.enabled and now - endpoint.failing_since >= timedelta(hours=settings.disable_after_hours):
        await disable_endpoint(session, endpoint, "failing", now)
