"""SendGrid's Event Webhook (EMAIL_MODE=sendgrid): what became of an email after SendGrid took it.

SendGrid signs each POST with ECDSA (P-256, SHA-256) over the timestamp header followed by the
raw body; the organisation's verification key (SendGrid's "Signed Event Webhook" public key, base64
DER or PEM) is SENDGRID_WEBHOOK_PUBLIC_KEY. Without it the webhook refuses everything.

Each email we relay through SendGrid carries our organisation and delivery ids as unique args
(the X-SMTPAPI header, delivery._build_email), which SendGrid echoes in every event; its `smtp-id`
is our Message-ID and must match the delivery's. Mapped: `delivered` -> delivered; `bounce` ->
bounced (a hard bounce also suppresses the address; `blocked`, a soft one, does not); `dropped` ->
bounced, suppressing the address when SendGrid dropped it as bounced or invalid. Other events
(processed, deferred, open, click...) change nothing. Reports only move a delivery forward
(reports.py), so SendGrid's retries and a replayed POST are harmless."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spotless.domain.messaging.reports import Outcome
from spotless.lib.errors import Problem

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
ORG_ARG = "spotless_org"
DELIVERY_ARG = "spotless_delivery"
# SendGrid's `dropped` reasons meaning the address itself will not take mail.
DEAD_ADDRESS_DROPS = ("bounced address", "invalid")


def _unsigned() -> Problem:
    return Problem(400, "invalid-signature", "The request is not signed by SendGrid")


def _public_key(configured: str) -> ec.EllipticCurvePublicKey:
    text = configured.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise Problem(500, "webhook-misconfigured", "The SendGrid verification key is not readable") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Problem(500, "webhook-misconfigured", "The SendGrid verification key is not an EC key")
    return key


def verify(public_key: str | None, body: bytes, signature: str | None, timestamp: str | None) -> None:
    """400 `invalid-signature` unless SendGrid signed `timestamp + body` with the configured key."""
    if not public_key or not signature or not timestamp:
        raise _unsigned()
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise _unsigned() from None
    try:
        _public_key(public_key).verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _unsigned() from None


@dataclass(frozen=True)
class Report:
    org_id: uuid.UUID
    delivery_id: uuid.UUID
    outcome: Outcome
    message_id: str | None
    reason: str
    permanent: bool


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _report(event: dict[str, Any]) -> Report | None:
    kind = str(event.get("event", "")).lower()
    org_id, delivery_id = _uuid(event.get(ORG_ARG)), _uuid(event.get(DELIVERY_ARG))
    if org_id is None or delivery_id is None:
        return None  # not one of ours (a password reset, another sender on the account)
    smtp_id = event.get("smtp-id")
    message_id = str(smtp_id) if smtp_id else None
    detail = " ".join(str(event.get(k) or "") for k in ("status", "reason")).strip()[:500]
    if kind == "delivered":
        return Report(org_id, delivery_id, "delivered", message_id, "", False)
    if kind == "bounce":
        hard = str(event.get("type", "bounce")).lower() != "blocked"
        return Report(org_id, delivery_id, "bounced", message_id, f"sendgrid bounce: {detail}".strip(), hard)
    if kind == "dropped":
        dead = str(event.get("reason", "")).lower().startswith(DEAD_ADDRESS_DROPS)
        return Report(org_id, delivery_id, "bounced", message_id, f"sendgrid dropped: {detail}".strip(), dead)
    return None


def parse(body: bytes) -> list[Report]:
    """The events of one POST that concern our deliveries. 400 for a body that is not a JSON array
    of objects."""
    try:
        events = msgspec.json.decode(body, type=list[dict[str, Any]])
    except msgspec.DecodeError:
        raise Problem(
            400, "invalid-body", "Not a SendGrid event batch", "The body must be a JSON array of event objects."
        ) from None
    return [r for r in map(_report, events) if r is not None]
