"""Notifications' resources for the cross-organisation and role-matrix tests: a digest setting."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.factories._http import expect
from tests.support.tenancy import register


@register("digest_key")
async def api_digest_key(client: Any, member: Any) -> str:
    key = f"digest-{uuid.uuid4().hex[:8]}"
    expect(
        await client.post(
            "/v1/notifications/digests", json={"digest_key": key, "schedule": "daily"}, headers=member.headers
        ),
        201,
        "digest setting",
    )
    return key
