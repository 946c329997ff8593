"""Request and response bodies of /v1/integrations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec


class ConnectStarted(msgspec.Struct, frozen=True, kw_only=True):
    authorization_url: str
    expires_at: datetime


class CallbackBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    state: Annotated[str, msgspec.Meta(min_length=16, max_length=256)]
    realm_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class ConnectionRead(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    provider: str
    owner_user_id: UUID | None
    external_id: str | None
    status: str
    scopes: str | None
    last_sync_at: datetime | None
    last_error: str | None
    created_at: datetime
