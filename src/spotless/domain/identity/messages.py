"""Identity's plain notices, sent through messaging's one delivery path (no secret in them:
mail carrying a secret is composed by its own job at send time, see identity/actors.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.public import MessageKind, register_kind

TEMPLATES = Path(__file__).parent / "templates"


async def _no_context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


TEMP_PASSWORD_RESET = register_kind(
    MessageKind(
        name="identity.temp_password_reset",
        audience="office",
        transactional=True,
        channels=("email",),
        template="temp_password_reset",
        template_dir=TEMPLATES,
        build_context=_no_context,
        sample_context=dict,
    )
)
