"""Integration connections made as the core stores them (tokens sealed with the test key ring,
bound to their row), for tests of the Google and QuickBooks packages that need one connected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.tokens import access_aad, refresh_aad
from spotless.settings import Settings
from tests.support.factories import arrange


async def connect(
    owner_engine: AsyncEngine,
    settings: Settings,
    org_id: UUID,
    provider: str,
    *,
    owner_user_id: UUID | None = None,
    access_token: str = "access-token",
    refresh_token: str = "refresh-token",
    expires_in: int = 3_600,
    external_id: str | None = None,
    status: str = "active",
) -> UUID:
    """An active connection whose tokens are these (`expires_in` seconds left on the access token;
    0 or less: it must be refreshed before use). `owner_user_id` must be a member of the org."""
    ring = settings.integrations.key_ring()
    connection_id = UUID(str(uuid7()))
    async with arrange(owner_engine) as db:
        db.add(
            IntegrationConnection(
                id=connection_id,
                org_id=org_id,
                provider=provider,
                owner_user_id=owner_user_id,
                external_id=external_id,
                status=status,
                access_token_sealed=ring.seal(access_token, aad=access_aad(org_id, connection_id)),
                refresh_token_sealed=ring.seal(refresh_token, aad=refresh_aad(org_id, connection_id)),
                access_expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
            )
        )
    return connection_id
