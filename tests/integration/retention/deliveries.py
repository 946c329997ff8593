"""Messages as the messaging context leaves them once finished, written straight to the table (the
retention tests are about what happens to them afterwards, not about sending)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text


async def add_delivery(
    conn: Any,
    org_id: UUID,
    client_id: UUID,
    *,
    age_days: int,
    status: str = "sent",
    address: str = "ada.lovelace@example.com",
    summary: str = "Your visit on Monday, Ada Lovelace",
    params: dict[str, Any] | None = None,
    kind: str = "booking.confirmed",
) -> UUID:
    delivery_id = uuid4()
    await conn.execute(
        text(
            "INSERT INTO deliveries (id, org_id, kind, subject_type, subject_id, send_key, recipient_kind,"
            " recipient_id, channel, status, params, address, summary, message_id, attempts, finished_at,"
            " created_at, updated_at) VALUES (:id, :org, :kind, 'booking', gen_random_uuid(), 'k', 'client', :client,"
            " 'email', CAST(:status AS text), CAST(:params AS jsonb), :address, :summary, :message_id, 1,"
            " CASE WHEN CAST(:status AS text) <> 'queued' THEN now() - make_interval(days => :age) END,"
            " now() - make_interval(days => :age), now() - make_interval(days => :age))"
        ),
        {
            "id": delivery_id,
            "org": org_id,
            "kind": kind,
            "client": client_id,
            "status": status,
            "params": json.dumps(params if params is not None else {"note": "door code 1234"}),
            "address": address,
            "summary": summary,
            "message_id": f"<{delivery_id}@spotless.test>",
            "age": age_days,
        },
    )
    return delivery_id


async def delivery(owner_engine: Any, delivery_id: UUID) -> Any:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM deliveries WHERE id = :id"), {"id": delivery_id})).one()
