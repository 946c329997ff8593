"""Cross-organisation factories for identity's path parameters."""

from __future__ import annotations

from typing import Any

from tests.support.identity import add_member, invite, unique_email
from tests.support.tenancy import register


@register("user_id")
async def make_user(client: Any, member: Any) -> str:
    return str((await add_member(client, member, "viewer")).user_id)


@register("invitation_id")
async def make_invitation(client: Any, member: Any) -> str:
    return str((await invite(client, member, unique_email("invitee")))["id"])
