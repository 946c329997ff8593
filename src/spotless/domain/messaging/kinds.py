"""What can be sent: each message kind, declared once by the module that sends it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from spotless.settings import Settings

Channel = Literal["email", "sms"]


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["client", "worker", "user", "invitee"]  # whose preferences/suppression apply
    id: uuid.UUID  # clients.id / workers.id / users.id / invitations.id (same org)


@dataclass(frozen=True)
class MessageKind:
    name: str
    audience: Literal["client", "worker", "office"]
    # False => List-Unsubscribe + List-Unsubscribe-Post (RFC 8058).
    transactional: bool
    channels: tuple[Channel, ...]
    # Base name: "<template>.subject.txt", ".txt", ".html", ".sms.txt" in `template_dir`.
    template: str
    template_dir: Path
    # Loads what the template needs at send time from ids in `params`; None: no longer due.
    build_context: Callable[[AsyncSession, uuid.UUID, Mapping[str, Any]], Awaitable[dict[str, Any] | None]]
    # A context for previews and for validating overrides, no database needed.
    sample_context: Callable[[], dict[str, Any]]
    attachments: (
        Callable[[AsyncSession, uuid.UUID, Mapping[str, Any]], Awaitable[list[tuple[str, str, bytes]]]] | None
    ) = None
    # Mints what must never rest anywhere (a reset link, an invitation token) at send time, in the
    # delivery's transaction, storing only hashes; called on every attempt, so a retry mints anew
    # and the last email's secret is the only one that works. Its values reach the sent message
    # only (stored summaries are redacted; the wording cannot be overridden). None: no longer due.
    secrets: (
        Callable[[AsyncSession, Settings, uuid.UUID, Mapping[str, Any]], Awaitable[dict[str, str | None] | None]] | None
    ) = None
    # With no stored preference, a text to a recipient who consented to texts on their current
    # number (not opted out), else the default channel (on-my-way: a text beats an email).
    sms_when_consented: bool = False

    @property
    def default_channel(self) -> Channel:
        return "email" if "email" in self.channels else self.channels[0]


KINDS: dict[str, MessageKind] = {}


class UnknownKind(LookupError):
    pass


def register_kind(kind: MessageKind) -> MessageKind:
    """At import of the module declaring it. Re-registering the same declaration is harmless
    (a module imported twice under test runners); two different ones under one name are not."""
    existing = KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"message kind {kind.name!r} is declared twice")
    if not kind.channels or any(c not in ("email", "sms") for c in kind.channels):
        raise ValueError(f"message kind {kind.name!r}: channels must be email and/or sms")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> MessageKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"unknown message kind {name!r}") from None
