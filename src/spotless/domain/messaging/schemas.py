"""Request and response bodies of messaging's routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from spotless.lib.schema import Clock

DeliveryStatus = Literal[
    "queued", "sent", "logged", "delivered", "skipped", "suppressed", "refused", "bounced", "failed"
]
Body = Annotated[str, msgspec.Meta(max_length=20_000)]


class KindRead(msgspec.Struct, kw_only=True):
    name: str
    audience: Literal["client", "worker", "office"]
    transactional: bool
    channels: list[Literal["email", "sms"]]
    overridden: bool


class TemplateParts(msgspec.Struct, kw_only=True):
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    sms: str | None = None


class TemplateRead(msgspec.Struct, kw_only=True):
    kind: str
    defaults: TemplateParts
    override: TemplateParts | None
    # The names the kind's templates may use (its sample context, plus org, recipient, unsubscribe_url).
    variables: list[str]


class TemplateUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The organisation's wording of a kind; a part left out (or null) keeps the default."""

    subject: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    text: Body | None = None
    html: Body | None = None
    sms: Annotated[str, msgspec.Meta(max_length=2_000)] | None = None


class PreviewRead(msgspec.Struct, kw_only=True):
    kind: str
    overridden: bool
    subject: str
    text: str
    html: str | None
    sms: str | None


class MessagingSettingsRead(msgspec.Struct, kw_only=True):
    reply_to: str | None
    logo_url: str | None
    quiet_start: Clock | None
    quiet_end: Clock | None


Email = Annotated[str, msgspec.Meta(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
HttpsUrl = Annotated[
    str, msgspec.Meta(max_length=2_000, pattern=r"^https://[^\s]+$", description="an https:// address")
]


class MessagingSettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Reply-to, logo and quiet hours (HH:MM local times; start after end spans midnight; both null:
    texts at any hour). Fields left out keep their value."""

    reply_to: Email | msgspec.UnsetType | None = msgspec.UNSET
    logo_url: HttpsUrl | msgspec.UnsetType | None = msgspec.UNSET
    quiet_start: Clock | msgspec.UnsetType | None = msgspec.UNSET
    quiet_end: Clock | msgspec.UnsetType | None = msgspec.UNSET


class PreferenceRead(msgspec.Struct, kw_only=True):
    kind: str
    channels: list[Literal["email", "sms"]]
    channel: Literal["email", "sms", "none"]
    # True while no choice is stored (the kind's default applies).
    default: bool


class PreferencesRead(msgspec.Struct, kw_only=True):
    recipient_kind: Literal["client", "worker"]
    recipient_id: uuid.UUID
    # The number texts go to when consented (and not opted out by STOP).
    sms_consent: bool
    sms_opted_out: bool
    preferences: list[PreferenceRead]


class PreferenceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    channel: Literal["email", "sms", "none"]


class SmsConsentUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Consent to texts on the recipient's current phone number, as they gave it (or withdrew it)."""

    consented: bool
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] = "office"


class MessageLogEntry(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    channel: Literal["email", "sms"]
    recipient_kind: Literal["client", "worker", "user"]
    recipient_id: uuid.UUID
    # The address or number it went to (masked where the reader may not see it).
    to: str | None
    # queued; sent / logged (accepted); delivered or bounced (the provider's later report);
    # skipped, suppressed, refused (a permanent refusal at send time), failed (gave up).
    status: DeliveryStatus
    attempts: int
    # The subject line (email) or the first words (text).
    summary: str | None
    # Why it was refused, skipped or failed.
    reason: str | None
    subject_type: str
    subject_id: uuid.UUID
    requested_at: datetime
    finished_at: datetime | None
    # When the provider reported it delivered or bounced (null: no report yet, or none expected).
    reported_at: datetime | None


class MessageLog(msgspec.Struct, kw_only=True):
    items: list[MessageLogEntry]


class UnsubscribeRead(msgspec.Struct, kw_only=True):
    unsubscribed: bool
    kind: str
