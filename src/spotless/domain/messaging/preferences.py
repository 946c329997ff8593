"""Who wants what: a client's or worker's channel per kind, their consent to texts, one-click
unsubscribe, and STOP/START from Twilio."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.clients.public import Client
from spotless.domain.identity.public import Membership
from spotless.domain.messaging.kinds import KINDS, MessageKind, UnknownKind, get_kind
from spotless.domain.messaging.models import Preference, SmsConsent, SmsOptOut
from spotless.domain.messaging.unsubscribe import UnsubscribeClaim
from spotless.domain.workforce.public import Worker
from spotless.lib.errors import FieldError, not_found

RecipientKind = Literal["client", "worker"]
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})


def normalize_phone(raw: str | None) -> str | None:
    """E.164 as Twilio wants it. North American numbers (the organisations' market) may be
    written without the country code; anything else must start with +."""
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if len(digits) == 10:
        return f"+1{digits}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{digits}"
    return None


def kinds_for(recipient_kind: RecipientKind) -> list[MessageKind]:
    return sorted((k for k in KINDS.values() if k.audience == recipient_kind), key=lambda k: k.name)


def kind_for(recipient_kind: RecipientKind, name: str) -> MessageKind:
    try:
        kind = get_kind(name)
    except UnknownKind:
        raise not_found("message kind") from None
    if kind.audience != recipient_kind:
        raise not_found("message kind")
    return kind


async def recipient_phone(session: AsyncSession, recipient_kind: RecipientKind, recipient_id: uuid.UUID) -> str | None:
    """The recipient's phone (normalised), or 404 when there is no such client/worker here."""
    model = Client if recipient_kind == "client" else Worker
    found = (await session.execute(select(model.phone).where(model.id == recipient_id))).one_or_none()
    if found is None:
        raise not_found(recipient_kind)
    return normalize_phone(found.phone)


async def stored_preferences(
    session: AsyncSession, recipient_kind: RecipientKind, recipient_id: uuid.UUID
) -> dict[str, str]:
    rows = await session.execute(
        select(Preference.kind, Preference.channel).where(
            Preference.recipient_kind == recipient_kind, Preference.recipient_id == recipient_id
        )
    )
    return {row.kind: row.channel for row in rows}


async def set_preference(
    session: AsyncSession,
    org_id: uuid.UUID,
    recipient_kind: str,
    recipient_id: uuid.UUID,
    kind: MessageKind,
    channel: str,
) -> None:
    if channel != "none" and channel not in kind.channels:
        raise FieldError("channel", f"{kind.name} is sent by {' or '.join(kind.channels)} only")
    now = datetime.now(UTC)
    await session.execute(
        pg_insert(Preference)
        .values(
            id=uuid7(),
            org_id=org_id,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            kind=kind.name,
            channel=channel,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(constraint="uq_message_preferences_kind", set_={"channel": channel, "updated_at": now})
    )


async def consent_phone(session: AsyncSession, recipient_kind: RecipientKind, recipient_id: uuid.UUID) -> str | None:
    """The number the recipient consented to texts on, if it is still their number."""
    phone = await recipient_phone(session, recipient_kind, recipient_id)
    if phone is None:
        return None
    found = await session.scalar(
        select(SmsConsent.phone).where(
            SmsConsent.recipient_kind == recipient_kind,
            SmsConsent.recipient_id == recipient_id,
            SmsConsent.phone == phone,
        )
    )
    return found


async def set_consent(
    session: AsyncSession,
    org_id: uuid.UUID,
    recipient_kind: RecipientKind,
    recipient_id: uuid.UUID,
    consented: bool,
    source: str,
) -> str | None:
    """Record (or withdraw) consent to texts on the recipient's current number; the number."""
    phone = await recipient_phone(session, recipient_kind, recipient_id)
    if consented and phone is None:
        raise FieldError("consented", f"the {recipient_kind} has no valid phone number to text")
    if not consented:
        await session.execute(
            delete(SmsConsent).where(
                SmsConsent.recipient_kind == recipient_kind, SmsConsent.recipient_id == recipient_id
            )
        )
        return phone
    now = datetime.now(UTC)
    await session.execute(
        pg_insert(SmsConsent)
        .values(
            id=uuid7(),
            org_id=org_id,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            phone=phone,
            source=source,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_sms_consents_phone")
    )
    return phone


async def opted_out(session: AsyncSession, phone: str | None) -> bool:
    if phone is None:
        return False
    return await session.scalar(select(SmsOptOut.phone).where(SmsOptOut.phone == phone)) is not None


async def handle_inbound_keyword(session: AsyncSession, from_number: str, body: str) -> str | None:
    """STOP (and its synonyms) opts the number out of every text we send; START opts it back in.
    Returns what was done ('stop', 'start') or None for any other text."""
    phone = normalize_phone(from_number)
    word = body.strip().upper().rstrip(".!")
    if phone is None:
        return None
    now = datetime.now(UTC)
    if word in STOP_WORDS:
        await session.execute(
            pg_insert(SmsOptOut).values(phone=phone, created_at=now, updated_at=now).on_conflict_do_nothing()
        )
        return "stop"
    if word in START_WORDS:
        await session.execute(delete(SmsOptOut).where(SmsOptOut.phone == phone))
        return "start"
    return None


AUDIENCE_OF = {"client": "client", "worker": "worker", "user": "office"}


async def unsubscribe(session: AsyncSession, claim: UnsubscribeClaim) -> MessageKind | None:
    """Honour a one-click unsubscribe (session bound to the claim's organisation): that kind is
    no longer sent to that recipient. None when the kind or the recipient is not (or no longer) there."""
    try:
        kind = get_kind(claim.kind)
    except UnknownKind:
        return None
    if AUDIENCE_OF.get(claim.recipient_kind) != kind.audience:
        return None
    if claim.recipient_kind == "user":
        found = await session.scalar(
            select(Membership.user_id).where(
                Membership.org_id == claim.org_id, Membership.user_id == claim.recipient_id
            )
        )
    else:
        model = Client if claim.recipient_kind == "client" else Worker
        found = await session.scalar(select(model.id).where(model.id == claim.recipient_id))
    if found is None:
        return None
    await set_preference(session, claim.org_id, claim.recipient_kind, claim.recipient_id, kind, "none")
    return kind
