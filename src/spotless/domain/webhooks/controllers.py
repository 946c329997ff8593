"""/v1/webhooks/...: an organisation's endpoints for integrators, the delivery log and replays.
Everything needs `integrations.manage` (owners and admins)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.webhooks import services
from spotless.domain.webhooks.catalog import EVENT_TYPE_NAMES, PUBLIC_EVENTS
from spotless.domain.webhooks.schemas import (
    AttemptRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    EventTypeRead,
    MessageRead,
    ReplayAccepted,
    ReplayRange,
    SecretRotated,
)
from spotless.lib.errors import problems
from spotless.lib.pagination import DEFAULT_LIMIT, Cursor, CursorPage, Limit
from spotless.settings import Settings

MANAGE = {"permission": "integrations.manage"}


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]

    @get(
        "/event-types",
        operation_id="listWebhookEventTypes",
        opt=MANAGE,
        summary="The event types an endpoint can subscribe to (stable names)",
    )
    async def event_types(self) -> list[EventTypeRead]:
        return [EventTypeRead(name=name, description=PUBLIC_EVENTS[name][1]) for name in EVENT_TYPE_NAMES]

    @get("/endpoints", operation_id="listWebhookEndpoints", opt=MANAGE, summary="The organisation's endpoints")
    async def list_endpoints(self, db_session: AsyncSession) -> list[EndpointRead]:
        return [EndpointRead.from_model(e) for e in await services.list_endpoints(db_session)]

    @post(
        "/endpoints",
        operation_id="createWebhookEndpoint",
        opt=MANAGE,
        status_code=201,
        responses=problems(400, 409),
        summary="Register an endpoint (https, a public address) for some event types. Its signing `secret` is "
        "in this answer only.",
    )
    async def create_endpoint(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, data: EndpointCreate
    ) -> EndpointCreated:
        endpoint, secret = await services.create_endpoint(db_session, principal, data, settings.webhooks)
        read = EndpointRead.from_model(endpoint)
        return EndpointCreated(**{f: getattr(read, f) for f in read.__struct_fields__}, secret=secret)

    @get(
        "/endpoints/{endpoint_id:uuid}",
        operation_id="getWebhookEndpoint",
        opt=MANAGE,
        responses=problems(404),
        summary="One endpoint (never its secret)",
    )
    async def get_endpoint(self, db_session: AsyncSession, endpoint_id: UUID) -> EndpointRead:
        return EndpointRead.from_model(await services.get_endpoint(db_session, endpoint_id))

    @patch(
        "/endpoints/{endpoint_id:uuid}",
        operation_id="updateWebhookEndpoint",
        opt=MANAGE,
        responses=problems(400, 404),
        summary="Change an endpoint's URL, description or event types, or enable/disable it (enabling clears its "
        "failure streak; disabling fails the messages still waiting, which can be replayed later)",
    )
    async def update_endpoint(
        self, db_session: AsyncSession, settings: Settings, endpoint_id: UUID, data: EndpointUpdate
    ) -> EndpointRead:
        endpoint = await services.update_endpoint(db_session, endpoint_id, data, settings.webhooks)
        return EndpointRead.from_model(endpoint)

    @delete(
        "/endpoints/{endpoint_id:uuid}",
        operation_id="deleteWebhookEndpoint",
        opt=MANAGE,
        status_code=204,
        responses=problems(404),
        summary="Delete an endpoint with its messages and their log",
    )
    async def delete_endpoint(self, db_session: AsyncSession, endpoint_id: UUID) -> None:
        await services.delete_endpoint(db_session, endpoint_id)

    @post(
        "/endpoints/{endpoint_id:uuid}/rotate-secret",
        operation_id="rotateWebhookSecret",
        opt=MANAGE,
        status_code=200,
        responses=problems(404),
        summary="A new signing secret (in this answer only); the previous one keeps signing for "
        "WEBHOOK_ROTATION_GRACE_HOURS, both signatures sent meanwhile",
    )
    async def rotate_secret(self, db_session: AsyncSession, settings: Settings, endpoint_id: UUID) -> SecretRotated:
        secret, expires = await services.rotate_secret(db_session, endpoint_id, settings.webhooks)
        return SecretRotated(endpoint_id=endpoint_id, secret=secret, previous_expires_at=expires)

    @get(
        "/endpoints/{endpoint_id:uuid}/messages",
        operation_id="listWebhookMessages",
        opt=MANAGE,
        responses=problems(400, 404),
        summary="The endpoint's messages, newest first, with where each stands",
    )
    async def list_messages(
        self,
        db_session: AsyncSession,
        endpoint_id: UUID,
        status: Literal["pending", "delivered", "failed"] | None = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> CursorPage[MessageRead]:
        rows, next_cursor, has_more = await services.list_messages(db_session, endpoint_id, status, cursor, limit)
        return CursorPage(
            items=[MessageRead.from_model(m) for m in rows], next_cursor=next_cursor, has_more=has_more, limit=limit
        )

    @post(
        "/endpoints/{endpoint_id:uuid}/replay",
        operation_id="replayWebhookMessages",
        opt=MANAGE,
        status_code=202,
        responses=problems(400, 404, 409),
        summary="Send again the messages of a time window (failed ones by default; at most 31 days and 1000 messages)",
    )
    async def replay_range(self, db_session: AsyncSession, endpoint_id: UUID, data: ReplayRange) -> ReplayAccepted:
        count = await services.replay_range(db_session, endpoint_id, data)
        return ReplayAccepted(status="queued", messages=count)

    @get(
        "/messages/{message_id:uuid}",
        operation_id="getWebhookMessage",
        opt=MANAGE,
        responses=problems(404),
        summary="One message: its body and where it stands",
    )
    async def get_message(self, db_session: AsyncSession, message_id: UUID) -> MessageRead:
        return MessageRead.from_model(await services.get_message(db_session, message_id))

    @get(
        "/messages/{message_id:uuid}/attempts",
        operation_id="listWebhookAttempts",
        opt=MANAGE,
        responses=problems(404),
        summary="Every attempt to deliver the message, newest first: status, latency, the start of the answer",
    )
    async def list_attempts(self, db_session: AsyncSession, message_id: UUID) -> list[AttemptRead]:
        return [AttemptRead.from_model(a) for a in await services.list_attempts(db_session, message_id)]

    @post(
        "/messages/{message_id:uuid}/replay",
        operation_id="replayWebhookMessage",
        opt=MANAGE,
        status_code=202,
        responses=problems(404, 409),
        summary="Send the message again (same webhook-id and body, a new round of attempts)",
    )
    async def replay_message(self, db_session: AsyncSession, message_id: UUID) -> Response[MessageRead]:
        message = await services.replay_message(db_session, message_id)
        return Response(MessageRead.from_model(message), status_code=202)
