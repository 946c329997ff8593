"""Audit log entries as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditEntry(msgspec.Struct, kw_only=True):
    id: UUID
    created_at: datetime
    actor_user_id: UUID | None
    actor_email: str | None
    admin_role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    metadata: dict[str, Any]
    request_id: str | None
    client_ip: str | None
