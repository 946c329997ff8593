"""Messaging under retention and data rights (registered with the retention context).

- Purger `message_bodies` (`message_body_days`): a message finished longer ago than that loses
  what it said (`summary`: the subject or first words of a text; `params`: what its wording was
  built from); the log line (kind, channel, recipient, address, status, times) stays.
- Bundle part `messages.json`: what was sent to the client: kind, channel, where, when, status.
  Never the wording or its parameters: a text's first words may hold a payment link.
- Erasure `messages`: the client's messages keep their log line without the address or content;
  their SMS consents (a phone number) are removed."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.retention.public import Part, RetentionSettings, register_part, register_purger, register_scrub

# Only finished messages (a queued one still needs its params to be sent), and only those with
# something left to clear, so a second run finds nothing.
_PURGE = text(
    "UPDATE deliveries SET params = '{}'::jsonb, summary = NULL, updated_at = now() WHERE id IN ("
    "SELECT id FROM deliveries WHERE org_id = :org_id AND status <> 'queued' AND finished_at IS NOT NULL"
    " AND finished_at < now() - make_interval(days => :days) AND (params <> '{}'::jsonb OR summary IS NOT NULL)"
    " ORDER BY finished_at LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


async def purge_message_bodies(session: AsyncSession, org_id: UUID, policy: RetentionSettings, batch: int) -> int:
    result = await session.execute(_PURGE, {"org_id": org_id, "days": policy.message_body_days, "batch": batch})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


register_purger("message_bodies", purge_message_bodies)

register_part(
    Part(
        "messages.json",
        "SELECT id, kind, channel, address, status, created_at AS requested_at, finished_at FROM deliveries"
        " WHERE org_id = :org_id AND client_id = :client_id ORDER BY created_at, id",
    )
)

register_scrub(
    "messages",
    "UPDATE deliveries SET address = NULL, summary = NULL, params = '{}'::jsonb, updated_at = now()"
    " WHERE org_id = :org_id AND client_id = :client_id",
)
register_scrub("sms_consents", "DELETE FROM sms_consents WHERE org_id = :org_id AND client_id = :client_id")
