"""Cross-organisation factories for identity's path parameters."""

from __future__ import annotations

from typing import Any

from tests.support.identity import unique_email
from tests.support.tenancy import register


@register("user_id")
async def make_user(client: Any, member: Any) -> str:
    response = await client.post(
        "/v1/iam/users", json={"email": unique_email("victim"), "role": "viewer"}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["id"])
