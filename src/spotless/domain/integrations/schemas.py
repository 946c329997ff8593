"""Bodies of /v1/integrations/...: connect (the provider's authorization URL), the callback the
admin page posts the provider's redirect to, and the connections' status. Tokens never appear."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from spotless.domain.integrations.models import IntegrationConnection
from spotless.lib.schema import Input, Output

Owner = Literal["me", "organization"]


class ConnectRequest(Input):
    # Whose connection this will be: the signed-in member's own (Google calendars only) or the
    # organisation's (owners and admins). Default: `me` for Google, `organization` for QuickBooks.
    owner: Owner | None = None


class ConnectStarted(Output):
    provider: str
    # Send the browser here; the provider redirects it back to the configured redirect URI.
    authorization_url: str
    # The connect must be completed (callback) by the same member before this.
    expires_at: datetime


class CallbackRequest(Input):
    """What the provider's redirect carried: `code` and `state` (and QuickBooks' `realmId`)."""

    code: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=2_048,
            pattern=r"^[\x21-\x7e]+$",
            description="the `code` query parameter of the provider's redirect, as it came (no spaces)",
        ),
    ]
    state: Annotated[
        str,
        Meta(
            min_length=16,
            max_length=256,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="the `state` query parameter of the provider's redirect, as it came",
        ),
    ]
    realm_id: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=32,
                pattern=r"^[0-9]+$",
                description="QuickBooks' `realmId` query parameter (digits)",
            ),
        ]
        | None
    ) = None


class ProviderRead(Output):
    name: str
    configured: bool
    # A member may connect their own account (Google calendar).
    per_member: bool


class ConnectionRead(Output):
    id: UUID
    provider: str
    # Relative to the caller: `me`, `organization`, or `member` (another member's own calendar).
    owner: Literal["me", "organization", "member"]
    owner_user_id: UUID | None
    # Google: the account's email; QuickBooks: the company's realmId.
    external_id: str | None
    status: str  # active | needs_reconnect
    status_changed_at: datetime
    scopes: list[str]
    connected_at: datetime
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    last_error: str | None
    error_count: int

    @classmethod
    def from_model(cls, row: IntegrationConnection, caller_id: UUID) -> ConnectionRead:
        return cls(
            id=row.id,
            provider=row.provider,
            owner="organization" if row.owner_user_id is None else "me" if row.owner_user_id == caller_id else "member",
            owner_user_id=row.owner_user_id,
            external_id=row.external_id,
            status=row.status,
            status_changed_at=row.status_changed_at,
            scopes=(row.scopes or "").split(),
            connected_at=row.created_at,
            last_sync_at=row.last_sync_at,
            next_sync_at=row.next_sync_at,
            last_error=row.last_error,
            error_count=row.error_count,
        )


class IntegrationsStatus(Output):
    providers: list[ProviderRead]
    items: list[ConnectionRead]
