"""Endpoints, their secrets, the delivery log and replays, for the office (RLS scopes every query
to the caller's organisation; another organisation's id is simply not found)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from msgspec import UnsetType
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.identity.public import Principal
from spotless.domain.webhooks import addresses, delivery
from spotless.domain.webhooks.actors import deliver
from spotless.domain.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, WebhookSecret
from spotless.domain.webhooks.schemas import EndpointCreate, EndpointUpdate, ReplayRange
from spotless.domain.webhooks.secret_store import new_secret, seal
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.pagination import Keyset
from spotless.webhook_settings import WebhookSettings

MAX_REPLAY_DAYS = 31
MAX_REPLAY_MESSAGES = 1_000
MAX_ATTEMPTS_LISTED = 200

MESSAGES = Keyset[WebhookMessage](
    "webhook_messages",
    [WebhookMessage.created_at, WebhookMessage.id],
    [datetime, UUID],
    descending=True,
    key=lambda m: (m.created_at, m.id),
)


async def check_url(url: str, settings: WebhookSettings, field: str = "url") -> str:
    """Refuse at once what could never be delivered to: not https (unless allowed), credentials
    in the URL, a private or internal address, or a name resolving to one. A name that does not
    resolve yet is accepted (each attempt checks again and logs why it could not send)."""
    try:
        await addresses.resolve_target(
            url,
            allow_http=settings.allow_http,
            allow_loopback=settings.allow_loopback,
            resolver=addresses.current_resolver(),
            resolve_seconds=2.0,
        )
    except addresses.AddressRefused as exc:
        message = str(exc)
        if "does not resolve" not in message:
            raise FieldError(field, message, code="address_not_allowed") from None
    return url


async def _endpoint(session: AsyncSession, endpoint_id: UUID, *, lock: bool = False) -> WebhookEndpoint:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    found = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if found is None:
        raise not_found("webhook endpoint")
    return found


async def _add_secret(session: AsyncSession, endpoint: WebhookEndpoint, settings: WebhookSettings) -> str:
    secret = new_secret()
    session.add(
        WebhookSecret(
            org_id=endpoint.org_id,
            endpoint_id=endpoint.id,
            sealed=seal(settings.secret_key, endpoint.org_id, endpoint.id, secret),
        )
    )
    return secret


async def create_endpoint(
    session: AsyncSession, principal: Principal, data: EndpointCreate, settings: WebhookSettings
) -> tuple[WebhookEndpoint, str]:
    await check_url(data.url, settings)
    count = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
    if (count or 0) >= settings.max_endpoints:
        raise Problem(
            409,
            "webhook-endpoint-limit",
            "Too many webhook endpoints",
            f"An organisation has at most {settings.max_endpoints} endpoints; delete one first.",
        )
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=uuid7(),
        org_id=principal.org_id,
        url=data.url,
        description=data.description,
        event_types=sorted(set(data.event_types)),
        enabled=data.enabled,
        disabled_reason=None if data.enabled else "manual",
        disabled_at=None if data.enabled else now,
    )
    session.add(endpoint)
    await session.flush()
    secret = await _add_secret(session, endpoint, settings)
    await session.flush()
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    rows = await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))
    return list(rows.scalars())


async def get_endpoint(session: AsyncSession, endpoint_id: UUID) -> WebhookEndpoint:
    return await _endpoint(session, endpoint_id)


async def update_endpoint(
    session: AsyncSession, endpoint_id: UUID, data: EndpointUpdate, settings: WebhookSettings
) -> WebhookEndpoint:
    endpoint = await _endpoint(session, endpoint_id, lock=True)
    now = datetime.now(UTC)
    if not isinstance(data.url, UnsetType):
        endpoint.url = await check_url(data.url, settings)
    if not isinstance(data.event_types, UnsetType):
        endpoint.event_types = sorted(set(data.event_types))
    if not isinstance(data.description, UnsetType):
        endpoint.description = data.description
    if not isinstance(data.enabled, UnsetType):
        if data.enabled and not endpoint.enabled:
            endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
            endpoint.failing_since = None
        elif not data.enabled and endpoint.enabled:
            await delivery.disable_endpoint(session, endpoint, "manual", now)
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: UUID) -> None:
    endpoint = await _endpoint(session, endpoint_id, lock=True)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, endpoint_id: UUID, settings: WebhookSettings
) -> tuple[str, datetime | None]:
    """A new current secret; the previous one signs too until the grace period ends (a receiver
    switches without losing a message). Secrets rotated before it expire at once."""
    endpoint = await _endpoint(session, endpoint_id, lock=True)
    now = datetime.now(UTC)
    grace_end = now + timedelta(hours=settings.rotation_grace_hours)
    await session.execute(
        update(WebhookSecret)
        .where(WebhookSecret.endpoint_id == endpoint.id, WebhookSecret.expires_at > now)
        .values(expires_at=now)
    )
    current = (
        await session.execute(
            update(WebhookSecret)
            .where(WebhookSecret.endpoint_id == endpoint.id, WebhookSecret.expires_at.is_(None))
            .values(expires_at=grace_end)
            .returning(WebhookSecret.id)
        )
    ).scalar_one_or_none()
    await session.flush()
    secret = await _add_secret(session, endpoint, settings)
    await session.flush()
    return secret, grace_end if current is not None and settings.rotation_grace_hours else None


async def list_messages(
    session: AsyncSession, endpoint_id: UUID, status: str | None, cursor: str | None, limit: int
) -> tuple[list[WebhookMessage], str | None, bool]:
    await _endpoint(session, endpoint_id)
    stmt = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookMessage.status == status)
    rows = (await session.execute(MESSAGES.apply(stmt, cursor, limit))).scalars().all()
    return MESSAGES.page(rows, limit)


async def get_message(session: AsyncSession, message_id: UUID) -> WebhookMessage:
    found = await session.get(WebhookMessage, message_id)
    if found is None:
        raise not_found("webhook message")
    return found


async def list_attempts(session: AsyncSession, message_id: UUID) -> list[WebhookAttempt]:
    await get_message(session, message_id)
    rows = await session.execute(
        select(WebhookAttempt)
        .where(WebhookAttempt.message_id == message_id)
        .order_by(WebhookAttempt.started_at.desc(), WebhookAttempt.id.desc())
        .limit(MAX_ATTEMPTS_LISTED)
    )
    return list(rows.scalars())


def _endpoint_must_be_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Problem(
            409,
            "webhook-endpoint-disabled",
            "The endpoint is disabled",
            "Enable the endpoint (PATCH enabled=true) before replaying its messages.",
        )


def _queue(session: AsyncSession, message: WebhookMessage, now: datetime) -> None:
    token = uuid.uuid4()
    message.status, message.attempts, message.next_attempt_at = "pending", 0, now
    message.lease_token, message.leased_until = token, now + delivery.QUEUE_LEASE
    message.last_error = None
    deliver.enqueue(session, message.org_id, message.id, token)


async def replay_message(session: AsyncSession, message_id: UUID) -> WebhookMessage:
    """Send a message again (a new round of attempts, the same webhook-id and body). A message
    still pending is left to its round."""
    message = await get_message(session, message_id)
    message = await session.get_one(WebhookMessage, message.id, with_for_update=True, populate_existing=True)
    _endpoint_must_be_enabled(await _endpoint(session, message.endpoint_id))
    if message.status != "pending":
        _queue(session, message, datetime.now(UTC))
    await session.flush()
    return message


async def replay_range(session: AsyncSession, endpoint_id: UUID, data: ReplayRange) -> int:
    endpoint = await _endpoint(session, endpoint_id)
    if data.until <= data.since:
        raise FieldError("until", "must be after since")
    if data.until - data.since > timedelta(days=MAX_REPLAY_DAYS):
        raise FieldError("until", f"the window is at most {MAX_REPLAY_DAYS} days; replay it in parts")
    _endpoint_must_be_enabled(endpoint)
    statuses = ("failed",) if data.only_failed else ("failed", "delivered")
    rows = (
        (
            await session.execute(
                select(WebhookMessage)
                .where(
                    WebhookMessage.endpoint_id == endpoint_id,
                    WebhookMessage.created_at >= data.since,
                    WebhookMessage.created_at < data.until,
                    WebhookMessage.status.in_(statuses),
                )
                .order_by(WebhookMessage.created_at, WebhookMessage.id)
                .limit(MAX_REPLAY_MESSAGES + 1)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if len(rows) > MAX_REPLAY_MESSAGES:
        raise FieldError("until", f"the window holds more than {MAX_REPLAY_MESSAGES} messages; replay a shorter one")
    now = datetime.now(UTC)
    for message in rows:
        _queue(session, message, now)
    await session.flush()
    return len(rows)
