"""/v1/integrations/...: connect Google Calendar or QuickBooks Online, finish the connect with
what the provider's redirect carried, see the connections, disconnect. Every member reaches these
routes (`core.view`); oauth.py decides who may act on which connection."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.integrations import oauth
from spotless.domain.integrations.providers import PROVIDER_NAMES, provider
from spotless.domain.integrations.schemas import (
    CallbackRequest,
    ConnectionRead,
    ConnectRequest,
    ConnectStarted,
    IntegrationsStatus,
    Owner,
    ProviderRead,
)
from spotless.lib.errors import problems
from spotless.settings import Settings

MEMBER = {"permission": "core.view"}


class IntegrationsController(Controller):
    path = "/v1/integrations"
    tags = ["integrations"]

    @get(
        "/",
        operation_id="listIntegrations",
        opt=MEMBER,
        summary="The providers this server has set up, and the connections the caller may see (owners and "
        "admins: the organisation's; everyone else: their own)",
    )
    async def status(self, db_session: AsyncSession, principal: Principal, settings: Settings) -> IntegrationsStatus:
        providers = [provider(settings.integrations, name) for name in PROVIDER_NAMES]
        rows = await oauth.visible_connections(db_session, principal)
        return IntegrationsStatus(
            providers=[ProviderRead(name=p.name, configured=p.configured, per_member=p.per_user) for p in providers],
            items=[ConnectionRead.from_model(row, principal.user_id) for row in rows],
        )

    @post(
        "/{provider_name:str}/connect",
        operation_id="connectIntegration",
        opt=MEMBER,
        status_code=200,
        responses=problems(400, 404, 409),
        summary="Start connecting: the provider's authorization URL to send the browser to (its state is single "
        "use, bound to the caller, valid INTEGRATION_OAUTH_STATE_TTL_SECONDS)",
    )
    async def connect(
        self,
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        data: ConnectRequest,
        provider_name: str = Parameter(description="google | quickbooks"),
    ) -> ConnectStarted:
        url, expires_at = await oauth.start_connect(db_session, principal, settings, provider_name, data.owner)
        return ConnectStarted(provider=provider_name, authorization_url=url, expires_at=expires_at)

    @post(
        "/{provider_name:str}/callback",
        operation_id="completeIntegrationConnect",
        opt=MEMBER,
        status_code=200,
        responses=problems(400, 404, 409, 503),
        summary="Finish connecting with the code and state the provider redirected with (and QuickBooks' realmId), "
        "posted by the member who started it",
    )
    async def callback(
        self,
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        data: CallbackRequest,
        provider_name: str = Parameter(description="google | quickbooks"),
    ) -> ConnectionRead:
        row = await oauth.complete_callback(
            db_session, principal, settings, provider_name, code=data.code, state=data.state, realm_id=data.realm_id
        )
        return ConnectionRead.from_model(row, principal.user_id)

    @delete(
        "/{provider_name:str}",
        operation_id="disconnectIntegration",
        opt=MEMBER,
        status_code=204,
        responses=problems(400, 404),
        summary="Disconnect: the grant is revoked at the provider (best effort), the tokens wiped, syncing stops. "
        "`owner=me` (default for Google) or `organization`; owners and admins may name a member's `user_id`",
    )
    async def disconnect(
        self,
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        provider_name: str = Parameter(description="google | quickbooks"),
        owner: Owner | None = Parameter(query="owner", required=False, default=None),
        user_id: UUID | None = Parameter(query="user_id", required=False, default=None),
    ) -> None:
        await oauth.disconnect(db_session, principal, settings, provider_name, owner, user_id)
