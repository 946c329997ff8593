"""The office notice when a provider refuses a connection's grant."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.public import MessageKind, register_kind

TEMPLATES = Path(__file__).parent / "templates"
LABELS = {"google": "Google Calendar", "quickbooks": "QuickBooks"}


async def _context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"provider": LABELS.get(str(params.get("provider")), "An integration")}


def _sample() -> dict[str, Any]:
    return {"provider": "Google Calendar", "recipient": {"name": "Alex Martin"}}


NEEDS_RECONNECT = register_kind(
    MessageKind(
        name="integration.needs_reconnect",
        audience="office",
        transactional=True,
        channels=("email",),
        template="integration_needs_reconnect",
        template_dir=TEMPLATES,
        build_context=_context,
        sample_context=_sample,
    )
)
