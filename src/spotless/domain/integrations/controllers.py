"""/v1/integrations: connect (OAuth), the callback, the caller's connections, disconnect."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.integrations import oauth
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.schemas import CallbackBody, ConnectionRead, ConnectStarted
from spotless.lib.errors import problems
from spotless.settings import Settings

# Every member may reach these; oauth.owner_for narrows what each may connect.
MEMBER = {"permission": "core.view"}


def _read(row: IntegrationConnection) -> ConnectionRead:
    return ConnectionRead(
        id=row.id,
        provider=row.provider,
        owner_user_id=row.owner_user_id,
        external_id=row.external_id,
        status=row.status,
        scopes=row.scopes,
        last_sync_at=row.last_sync_at,
        last_error=row.last_error,
        created_at=row.created_at,
    )


class IntegrationController(Controller):
    path = "/v1/integrations"
    tags = ["integrations"]

    @get(operation_id="listIntegrations", opt=MEMBER, responses=problems(403), summary="Connections the caller may see")
    async def list_integrations(self, db_session: AsyncSession, principal: Principal) -> list[ConnectionRead]:
        return [_read(r) for r in await oauth.visible(db_session, principal)]

    @post(
        "/{provider:str}/connect",
        operation_id="connectIntegration",
        opt=MEMBER,
        responses=problems(403, 404, 503),
        summary="Start connecting a provider: the URL to send the browser to (valid 10 minutes)",
    )
    async def connect(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, provider: str
    ) -> ConnectStarted:
        return await oauth.start(db_session, principal, settings, provider)

    @post(
        "/{provider:str}/callback",
        operation_id="finishIntegration",
        opt=MEMBER,
        responses=problems(400, 403, 404, 502, 503),
        summary="Finish connecting: the code and state the provider redirected back with",
    )
    async def callback(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, provider: str, data: CallbackBody
    ) -> ConnectionRead:
        return _read(await oauth.finish(db_session, principal, settings, provider, data))

    @delete(
        "/{provider:str}",
        operation_id="disconnectIntegration",
        opt=MEMBER,
        responses=problems(403, 404),
        summary="Disconnect: tokens wiped and revoked at the provider (best effort)",
    )
    async def disconnect(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, provider: str
    ) -> None:
        await oauth.disconnect(db_session, principal, settings, provider)
