"""The delivery of one `deliveries` row: the only place an email or a text of a message kind leaves.

The row is locked (FOR UPDATE) for the whole attempt, so two workers handed the same job (a
redelivery, a sweep after a crash) run one after the other, and the second finds it done. A
worker that dies mid-attempt rolls back: the row stays queued and the next delivery of the job
tries again (at least once; the Message-ID, derived from the row's id, lets the far end drop a
duplicate). Outcomes:

- `sent` / `logged` (EMAIL_MODE=log), `skipped` (preference, no address, EMAIL_MODE=off, no
  longer due), `suppressed` (an address refused before, a number that sent STOP),
- `refused` (a permanent 5xx: the address is suppressed in this organisation from now on),
- a temporary failure (4xx, lost connection) leaves it queued, counts the attempt and asks again
  after a doubling backoff (`not_before` on the row: a duplicate job meanwhile does nothing); after EMAIL_MAX_ATTEMPTS it is `failed` and the job dead-letters.
- a text in the organisation's quiet hours is deferred (queued, `not_before` = their end).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.clients.public import Client
from spotless.domain.identity.public import Invitation, Membership, Organization, User
from spotless.domain.messaging.email import Answer, send_to
from spotless.domain.messaging.kinds import MessageKind, get_kind
from spotless.domain.messaging.models import (
    FINAL_STATUSES,
    Delivery,
    MessagingSettings,
    Preference,
    SmsConsent,
    SmsOptOut,
    Suppression,
    TemplateOverride,
)
from spotless.domain.messaging.preferences import normalize_phone
from spotless.domain.messaging.rendering import Part, Rendered, RenderError, render
from spotless.domain.messaging.sms import UNSUBSCRIBED, send_sms
from spotless.domain.messaging.twilio_inbound import status_callback_url
from spotless.domain.messaging.unsubscribe import UnsubscribeClaim, unsubscribe_url
from spotless.domain.workforce.public import Worker
from spotless.lib.jobs.outbox import JobOutbox
from spotless.lib.metrics import EMAIL_JOBS
from spotless.settings import Settings

logger = logging.getLogger("spotless.messaging.delivery")

DELIVER_JOB = "messaging.deliver"
DELIVER_QUEUE = "email"
# The job due at `not_before` is handed over by the sweep on the database's clock; a worker whose
# clock is a little behind must still take it (an early return would drop that attempt).
CLOCK_SLACK = timedelta(seconds=2)
REDACTED = "[redacted]"


class DeadLettered(Exception):
    """A delivery that gave up after its last attempt: the job ends in the dead letters."""


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class OrgProfile:
    name: str
    timezone: str
    reply_to: str | None
    logo_url: str | None
    quiet_start: time | None
    quiet_end: time | None

    def layout(self) -> dict[str, Any]:
        return {"name": self.name, "reply_to": self.reply_to, "logo_url": self.logo_url}


def message_id_for(settings: Settings, delivery_id: uuid.UUID) -> str:
    """The same on every attempt of one delivery (the far end's duplicate detection keys on it)."""
    domain = settings.email.from_address.rsplit("@", 1)[-1]
    return f"<{delivery_id}@{domain}>"


async def org_profile(session: AsyncSession, org_id: uuid.UUID) -> OrgProfile:
    row = (
        await session.execute(
            select(
                Organization.name,
                Organization.timezone,
                Organization.contact_email,
                MessagingSettings.reply_to,
                MessagingSettings.logo_url,
                MessagingSettings.quiet_start,
                MessagingSettings.quiet_end,
                MessagingSettings.org_id,
            )
            .outerjoin(MessagingSettings, MessagingSettings.org_id == Organization.id)
            .where(Organization.id == org_id)
        )
    ).one()
    configured = row.org_id is not None
    return OrgProfile(
        name=row.name,
        timezone=row.timezone,
        reply_to=row.reply_to or row.contact_email,
        logo_url=row.logo_url,
        # No settings row yet: the default quiet hours (21:00 to 08:00) apply.
        quiet_start=row.quiet_start if configured else time(21, 0),
        quiet_end=row.quiet_end if configured else time(8, 0),
    )


async def contact_of(session: AsyncSession, recipient_kind: str, recipient_id: uuid.UUID) -> Contact | None:
    """The recipient as they are now (None: gone, archived or deactivated)."""
    if recipient_kind == "client":
        client = (
            await session.execute(
                select(Client.name, Client.email, Client.phone, Client.archived_at).where(Client.id == recipient_id)
            )
        ).one_or_none()
        if client is None or client.archived_at is not None:
            return None
        return Contact(client.name, client.email, client.phone)
    if recipient_kind == "worker":
        worker = (
            await session.execute(
                select(Worker.name, Worker.email, Worker.phone, Worker.active).where(Worker.id == recipient_id)
            )
        ).one_or_none()
        if worker is None or not worker.active:
            return None
        return Contact(worker.name, worker.email, worker.phone)
    if recipient_kind == "invitee":
        invited = (
            await session.execute(
                select(Invitation.email, Invitation.display_name).where(
                    Invitation.id == recipient_id, Invitation.status == "pending"
                )
            )
        ).one_or_none()
        return None if invited is None else Contact(invited.display_name or invited.email, invited.email, None)
    member = (
        await session.execute(
            select(User.email, User.full_name, Membership.display_name)
            .join(Membership, Membership.user_id == User.id)
            .where(User.id == recipient_id, Membership.is_active.is_(True))
        )
    ).one_or_none()
    if member is None:
        return None
    return Contact(member.display_name or member.full_name or member.email, member.email, None)


async def preferred_channel(
    session: AsyncSession, kind: MessageKind, recipient_kind: str, recipient_id: uuid.UUID, phone: str | None = None
) -> str:
    stored = await session.scalar(
        select(Preference.channel).where(
            Preference.recipient_kind == recipient_kind,
            Preference.recipient_id == recipient_id,
            Preference.kind == kind.name,
        )
    )
    if stored:
        return stored
    # --- kinds that prefer texts (MessageKind.sms_when_consented): a consented, open number ---
    if kind.sms_when_consented and "sms" in kind.channels and phone:
        consented = await session.scalar(
            select(SmsConsent.id).where(
                SmsConsent.recipient_kind == recipient_kind,
                SmsConsent.recipient_id == recipient_id,
                SmsConsent.phone == phone,
            )
        )
        if consented is not None and not await _suppressed(session, "sms", phone):
            return "sms"
    return kind.default_channel


async def _overrides(session: AsyncSession, kind: str) -> dict[Part, str | None]:
    row = await session.scalar(select(TemplateOverride).where(TemplateOverride.kind == kind))
    if row is None:
        return {}
    return {"subject": row.subject, "text": row.text_body, "html": row.html_body, "sms": row.sms_body}


def quiet_until(profile: OrgProfile, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in (UTC), or None when texts may go now."""
    start, end = profile.quiet_start, profile.quiet_end
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(profile.timezone)
    local = now.astimezone(zone)
    clock = local.time()
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    # Wall-clock end of quiet hours on that day; fold=0 picks the first of an ambiguous hour.
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def enqueue_later(session: AsyncSession, when: datetime, org_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """A delivery job due at `when`: an outbox row the sweep hands over once it is due (not the
    commit's fast path, which would deliver it at once)."""
    session.add(
        JobOutbox(
            id=uuid7(),
            actor_name=DELIVER_JOB,
            queue_name=DELIVER_QUEUE,
            args=[str(org_id), str(delivery_id)],
            kwargs={},
            available_at=when,
            attempts=0,
        )
    )


def _backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.email.retry_backoff_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.email.retry_backoff_max_seconds))


def _redact(text: str, secrets: dict[str, str | None]) -> str:
    """What is stored of a message never holds its minted secrets."""
    for value in secrets.values():
        if value:
            text = text.replace(value, REDACTED)
    return text


def _finish(row: Delivery, status: str, now: datetime, error: str | None = None) -> None:
    row.status = status
    row.finished_at = now
    row.error = error
    if row.channel == "email":
        counted = {"sent": "sent", "logged": "sent", "refused": "error", "failed": "error", "bounced": "error"}
        EMAIL_JOBS.labels(job=row.kind, status=counted.get(status, "skipped")).inc()


async def _suppressed(session: AsyncSession, channel: str, address: str) -> bool:
    if channel == "sms" and await session.scalar(select(SmsOptOut.phone).where(SmsOptOut.phone == address)):
        return True
    # An sms row too: a number Twilio reported unreachable/unsubscribed (messaging/reports.py).
    found = await session.scalar(
        select(Suppression.id).where(Suppression.channel == channel, Suppression.address == address)
    )
    return found is not None


async def suppress(
    session: AsyncSession, org_id: uuid.UUID, channel: str, address: str, reason: str, delivery_id: uuid.UUID | None
) -> None:
    now = datetime.now(UTC)
    await session.execute(
        pg_insert(Suppression)
        .values(
            id=uuid7(),
            org_id=org_id,
            channel=channel,
            address=address,
            reason=reason[:500],
            delivery_id=delivery_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_message_suppressions_address")
    )


def _build_email(
    settings: Settings,
    row: Delivery,
    kind: MessageKind,
    rendered: Rendered,
    to: Contact,
    profile: OrgProfile,
    unsubscribe: str | None,
    attachments: list[tuple[str, str, bytes]],
) -> EmailMessage:
    message = EmailMessage()
    # The organisation's name on our address: mail from our domain passes SPF/DKIM; replies go to it.
    message["From"] = formataddr((profile.name or settings.email.from_name, settings.email.from_address))
    message["To"] = formataddr((to.name, to.email or ""))
    if profile.reply_to:
        message["Reply-To"] = profile.reply_to
    message["Subject"] = rendered.subject
    message["Message-ID"] = message_id_for(settings, row.id)
    if settings.email.mode == "sendgrid":  # echoed in SendGrid's event webhook (sendgrid_events.py)
        message["X-SMTPAPI"] = json.dumps(
            {"unique_args": {"spotless_org": str(row.org_id), "spotless_delivery": str(row.id)}}
        )
    if unsubscribe is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    for filename, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return message


@dataclass
class Attempt:
    dead: bool = False


async def attempt_delivery(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> Attempt:
    """One attempt, in the caller's transaction (bound to `org_id`). Raises when the kind's context
    builder raises (the job retries); a DeadLettered outcome is reported, not raised, so the caller
    commits the `failed` row first."""
    row = await session.scalar(select(Delivery).where(Delivery.id == delivery_id).with_for_update())
    result = Attempt()
    if row is None:
        return result
    now = datetime.now(UTC)
    if row.status in FINAL_STATUSES:
        return result  # a redelivered job: done already
    if row.not_before is not None and row.not_before > now + CLOCK_SLACK:
        return result  # deferred (quiet hours, a retry's backoff): the job due at `not_before` comes then
    # Unknown here raises (UnknownKind), so the job is retried: during a rolling deploy a worker
    # still on the old code may meet a kind only the new code declares.
    kind = get_kind(row.kind)
    to = await contact_of(session, row.recipient_kind, row.recipient_id)
    if to is None:
        _finish(row, "skipped", now, "recipient no longer active")
        return result
    wanted = await preferred_channel(session, kind, row.recipient_kind, row.recipient_id, normalize_phone(to.phone))
    if wanted != row.channel:
        _finish(row, "skipped", now, f"preference: {wanted}")
        return result
    address = to.email if row.channel == "email" else normalize_phone(to.phone)
    if not address:
        _finish(row, "skipped", now, f"no {'email address' if row.channel == 'email' else 'phone number'}")
        return result
    row.address = address
    if row.channel == "sms":
        consent = await session.scalar(
            select(SmsConsent.id).where(
                SmsConsent.recipient_kind == row.recipient_kind,
                SmsConsent.recipient_id == row.recipient_id,
                SmsConsent.phone == address,
            )
        )
        if consent is None:
            _finish(row, "skipped", now, "no consent to texts on this number")
            return result
    if await _suppressed(session, row.channel, address):
        _finish(row, "suppressed", now, "address suppressed" if row.channel == "email" else "number sent STOP")
        return result
    profile = await org_profile(session, org_id)
    if row.channel == "sms":
        until = quiet_until(profile, now)
        if until is not None:
            row.not_before = until
            enqueue_later(session, until, org_id, row.id)
            return result
    context = await kind.build_context(session, org_id, row.params)
    if context is None:
        _finish(row, "skipped", now, "no longer due")
        return result
    secrets: dict[str, str | None] = {}
    if kind.secrets is not None:
        minted = await kind.secrets(session, settings, org_id, row.params)
        if minted is None:
            _finish(row, "skipped", now, "no longer due")
            return result
        secrets = minted
    unsubscribe = None
    if not kind.transactional:
        unsubscribe = unsubscribe_url(
            settings, UnsubscribeClaim(org_id, row.recipient_kind, row.recipient_id, kind.name)
        )
    context = {**context, **secrets, "recipient": {"name": to.name}}
    overrides = await _overrides(session, kind.name) if kind.secrets is None else {}
    try:
        rendered = render(kind, context, overrides, org=profile.layout(), unsubscribe_url=unsubscribe)
    except RenderError as exc:
        _finish(row, "failed", now, f"does not render: {exc}"[:1000])
        return result
    row.attempts += 1
    row.last_attempt_at = now
    if row.channel == "email":
        row.message_id = message_id_for(settings, row.id)
        row.summary = _redact(rendered.subject, secrets)[:300]
        attachments = await kind.attachments(session, org_id, row.params) if kind.attachments else []
        message = _build_email(settings, row, kind, rendered, to, profile, unsubscribe, attachments)
        answer = (await send_to(settings.email, message, [address]))[address]
    else:
        if rendered.sms is None:
            _finish(row, "failed", now, "this kind has no text wording")
            return result
        row.summary = _redact(rendered.sms, secrets)[:300]
        callback = status_callback_url(settings.messaging.public_base_url, org_id, row.id)  # reports.py
        sms = await send_sms(
            settings.messaging.sms, address, rendered.sms, reference=str(row.id), status_callback=callback
        )
        if sms.sid:
            row.provider_id = sms.sid
        if sms.outcome == "permanent" and sms.code == UNSUBSCRIBED:
            await session.execute(
                pg_insert(SmsOptOut).values(phone=address, created_at=now, updated_at=now).on_conflict_do_nothing()
            )
        answer = Answer(sms.outcome, sms.code, sms.text)
    return await _record(session, settings, org_id, row, answer, now)


async def _record(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, row: Delivery, answer: Answer, now: datetime
) -> Attempt:
    if answer.outcome == "accepted":
        _finish(row, "sent", now)
    elif answer.outcome == "logged":
        _finish(row, "logged", now)
    elif answer.outcome == "skipped":
        _finish(row, "skipped", now, f"{row.channel} is off (mode off)")
    elif answer.outcome == "permanent":
        _finish(row, "refused", now, f"refused: {answer.code or ''} {answer.text}".strip()[:1000])
        if row.channel == "email" and row.address:
            # In the same transaction: the next request to this address is suppressed, not sent.
            await suppress(session, org_id, "email", row.address, f"{answer.code or ''} {answer.text}".strip(), row.id)
    else:
        error = f"temporary: {answer.code or ''} {answer.text}".strip()[:1000]
        if row.attempts >= settings.email.max_attempts:
            _finish(row, "failed", now, f"gave up after {row.attempts} attempts; last {error}")
            logger.warning("delivery %s dead-lettered after %d attempts", row.id, row.attempts)
            return Attempt(dead=True)
        row.error = error
        if row.channel == "email":
            EMAIL_JOBS.labels(job=row.kind, status="error").inc()
        # On the row too: a redelivered or duplicate job meanwhile waits for the backoff as well.
        row.not_before = now + _backoff(settings, row.attempts)
        enqueue_later(session, row.not_before, org_id, row.id)
    return Attempt()
