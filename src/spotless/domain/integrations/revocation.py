"""`integrations.revoke_grant`: a disconnected (or replaced) connection's grant revoked at the
provider after the disconnect committed. The refresh token travels sealed, bound to its connection
row, and is opened only here; a provider that is down is retried with the job's back-off, and one
that says the grant is already gone is done."""

from __future__ import annotations

import logging
from uuid import UUID

from spotless.domain.integrations import token_endpoint
from spotless.domain.integrations.providers import provider
from spotless.domain.integrations.tokens import refresh_aad
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.sealed import SealedError

logger = logging.getLogger("spotless.integrations.revocation")

REVOKE_JOB = "integrations.revoke_grant"


@job(REVOKE_JOB, max_retries=8, time_limit_ms=60_000, max_age_ms=7 * 86_400_000)
async def revoke_grant(org_id: UUID, connection_id: UUID, provider_name: str, sealed_refresh_token: str) -> None:
    settings = get_runtime().settings
    try:
        token = settings.integrations.key_ring().unseal(
            sealed_refresh_token, aad=refresh_aad(UUID(str(org_id)), UUID(str(connection_id)))
        )
    except SealedError:
        # Its key left the ring: nothing can open it, so nothing can use it either.
        logger.warning(
            "connection %s: its refresh token does not open; not revoked at %s", connection_id, provider_name
        )
        return
    found = provider(settings.integrations, provider_name)
    # ProviderUnavailable (unreachable, 429, 5xx) propagates: the job retries with back-off.
    await token_endpoint.revoke(found, token=token, timeout_seconds=settings.integrations.oauth_timeout_seconds)
