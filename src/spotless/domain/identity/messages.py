"""Identity's messages, all sent through messaging's one delivery path (`request_message` in the
requesting transaction, the `messaging.deliver` job). The password reset and the invitation
carry a secret: their `secrets` hook (identity's token logic, in services.py / invitations.py)
mints it when the delivery job sends, so their `deliveries` row, its job and the outbox hold ids
only. The hooks are imported when called: those modules import this one."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.public import MessageKind, register_kind
from spotless.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"


async def _no_context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


async def _temp_password_secrets(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    # Shown to the administrator (the default): the email only says it happened, with no secret.
    if not params.get("emailed"):
        return {"temp_password": None}
    from spotless.domain.identity.iam import mint_temp_password

    return await mint_temp_password(session, settings, params)


# The administrator's reset of a member's password. With EMAIL_TEMP_PASSWORDS the email carries
# the temporary password, minted when it is sent (only its hash is stored); otherwise the
# administrator was shown it and the email only tells the member.
TEMP_PASSWORD_RESET = register_kind(
    MessageKind(
        name="identity.temp_password_reset",
        audience="office",
        transactional=True,
        channels=("email",),
        template="temp_password_reset",
        template_dir=TEMPLATES,
        build_context=_no_context,
        sample_context=lambda: {"temp_password": None},
        secrets=_temp_password_secrets,
    )
)


async def _reset_context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    from spotless.domain.identity.services import reset_context

    return await reset_context(session, params)


async def _reset_secrets(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    from spotless.domain.identity.services import mint_reset_link

    return await mint_reset_link(session, settings, params)


PASSWORD_RESET = register_kind(
    MessageKind(
        name="identity.password_reset",
        audience="office",
        transactional=True,
        channels=("email",),
        template="password_reset",
        template_dir=TEMPLATES,
        build_context=_reset_context,
        sample_context=lambda: {"minutes": 60, "reset_url": "https://app.example/reset-password?token=sample"},
        secrets=_reset_secrets,
    )
)


async def _invitation_context(
    session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    from spotless.domain.identity.invitations import invitation_context

    return await invitation_context(session, params)


async def _invitation_secrets(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    from spotless.domain.identity.invitations import mint_invitation_secrets

    return await mint_invitation_secrets(session, settings, params)


INVITATION = register_kind(
    MessageKind(
        name="identity.invitation",
        audience="office",
        transactional=True,
        channels=("email",),
        template="invitation",
        template_dir=TEMPLATES,
        build_context=_invitation_context,
        sample_context=lambda: {
            "invitation": {
                "role": "dispatcher",
                "email": "ada@example.com",
                "org_slug": "sparkle",
                "until": "2026-01-08 09:00 UTC",
            },
            "accept_url": "https://app.example/invitations/accept?token=sample",
            "temp_password": None,
        },
        secrets=_invitation_secrets,
    )
)
