"""What the far end says of a message after accepting it: Twilio's status callbacks and
SendGrid's event webhook move a sent delivery to `delivered` or `bounced`.

Reports arrive late, twice and out of order, so they only ever move a delivery forward
(sent -> delivered -> bounced): a late "sent" never undoes "delivered", a repeat changes nothing.
A report that does not match a delivery we sent (another organisation's, an unknown Twilio SID,
a delivery never accepted) is refused the same way whatever the reason, so a caller learns
nothing about other organisations.

A permanent failure also suppresses the address in the delivery's organisation, as a 5xx SMTP
refusal does: Twilio's 21610 (the number sent STOP), 30003/30005/30006 (unreachable, unknown,
a landline), a hard email bounce, or SendGrid dropping the address."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.delivery import suppress
from spotless.domain.messaging.models import Delivery, SmsOptOut
from spotless.domain.messaging.sms import UNSUBSCRIBED

Outcome = Literal["delivered", "bounced"]

# How far along a delivery is; only a higher rank replaces a lower one. Statuses not listed
# (skipped, refused, failed...) were never accepted by the provider: no report applies to them.
_RANK = {"sent": 1, "logged": 1, "delivered": 2, "bounced": 3}

# Twilio error codes after which the number will never take our texts.
PERMANENT_SMS_ERRORS: dict[int, str] = {
    UNSUBSCRIBED: "the number sent STOP",
    30003: "unreachable handset",
    30005: "unknown number",
    30006: "landline or unreachable carrier",
}

# Twilio's MessageStatus values that settle a text (the others: queued, sending, sent...).
TWILIO_OUTCOMES: dict[str, Outcome] = {"delivered": "delivered", "undelivered": "bounced", "failed": "bounced"}


async def apply_report(
    session: AsyncSession,
    org_id: uuid.UUID,
    delivery_id: uuid.UUID,
    outcome: Outcome | None,
    *,
    channel: Literal["email", "sms"],
    provider_id: str | None = None,
    message_id: str | None = None,
    reason: str | None = None,
    suppress_address: bool = False,
) -> bool:
    """Apply one report to the delivery (in the caller's transaction, scoped to `org_id`).
    False: no delivery of this organisation, on this channel, sent with this provider id (Twilio's
    SID) or Message-ID (email).
    `outcome` None: a progress report (queued, sent...) that changes nothing but is ours."""
    # FOR UPDATE: a callback racing the delivery job's own transaction waits for its commit
    # (and then sees the provider id the job stored).
    row = await session.scalar(
        select(Delivery).where(Delivery.id == delivery_id, Delivery.channel == channel).with_for_update()
    )
    if row is None or row.org_id != org_id:
        return False
    if provider_id is not None and row.provider_id != provider_id:
        return False
    if message_id is not None and row.message_id != message_id:
        return False
    current = _RANK.get(row.status)
    if current is None:
        return False
    if outcome is not None and _RANK[outcome] > current:
        row.status = outcome
        row.reported_at = datetime.now(UTC)
        if outcome == "bounced":
            row.error = (f"bounced: {reason}" if reason else "bounced")[:1000]
    if outcome == "bounced" and suppress_address and row.address:
        await suppress(session, org_id, channel, row.address, reason or "bounced", row.id)
        if channel == "sms" and reason and reason.startswith(str(UNSUBSCRIBED)):
            # As when Twilio refuses the send itself: STOP on our shared number holds everywhere.
            now = datetime.now(UTC)
            await session.execute(
                pg_insert(SmsOptOut).values(phone=row.address, created_at=now, updated_at=now).on_conflict_do_nothing()
            )
    return True


def twilio_report(status: str, error_code: str | None) -> tuple[Outcome | None, str | None, bool]:
    """(outcome, reason, permanent) of one Twilio status callback."""
    outcome = TWILIO_OUTCOMES.get(status.strip().lower())
    code = int(error_code) if error_code and error_code.strip().isdigit() else None
    if outcome != "bounced":
        return outcome, None, False
    if code is None:
        return outcome, f"twilio {status}", False
    why = PERMANENT_SMS_ERRORS.get(code)
    return outcome, f"{code} {why or 'twilio ' + status}", why is not None
