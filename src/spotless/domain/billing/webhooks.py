"""Stripe webhook intake: verify the signature on the raw body, store the event through the inbox,
answer at once. Processing is a job (`stripe_events.handle_stripe_event`, the inbox handler of the
"stripe" source).

- The signature (`Stripe-Signature: t=...,v1=...`) is checked on the bytes as received, never on a
  re-serialised body, with Stripe's 300 s tolerance on the timestamp (`stripe.WebhookSignature`;
  only old timestamps are refused, as the library does). No circuit breaker is involved: verifying
  is local CPU work, and an outage of Stripe's API must not make us refuse their deliveries.
- A missing, forged or stale signature (or an unsigned-looking body) answers 400 problem
  `/problems/invalid-signature` and stores nothing; refusals count `webhook_errors_total`.
- A valid event is stored once per Stripe event id (`inbox.receive`: ON CONFLICT DO NOTHING, a job
  only when new) and answered 200 `{"received": true, "duplicate": ...}` after the commit.
- Nothing is matched here (the Connect `account` is mapped to the organisation by the job): the
  answer does not depend on tables a slow query could hold up, and an event we cannot match is
  still answered 2xx (Stripe disables endpoints that keep failing).
- A Checkout Session's `url` is a bearer URL: it is dropped before the event rests in the inbox.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.lib.errors import Problem
from spotless.lib.inbox import Received, receive
from spotless.lib.metrics import WEBHOOK_ERRORS
from spotless.settings import Settings

logger = logging.getLogger("spotless.billing.webhooks")

SOURCE = "stripe"
SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_SECONDS = 300  # stripe.Webhook.DEFAULT_TOLERANCE
MAX_EVENT_ID = 255
MAX_EVENT_TYPE = 128
# Fields of event objects that are bearer secrets (a Checkout Session's pay URL): never stored.
_BEARER_FIELDS = ("url",)
_BEARER_OBJECTS = {"checkout.session", "billing_portal.session", "account_link"}


def invalid_signature(detail: str) -> Problem:
    return Problem(400, "invalid-signature", "The webhook signature is not valid", detail)


def webhook_secrets(settings: Settings) -> tuple[str, ...]:
    """The endpoint's signing secrets (STRIPE_WEBHOOK_SECRET, whsec_...). While rotating, the new and
    the old one may both be given, comma-separated: a delivery signed with either is accepted."""
    return tuple(v.strip() for v in settings.stripe.webhook_secret.split(",") if v.strip())


def verify(raw: bytes, header: str | None, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The event a valid signature vouches for, or a 400 problem."""
    if not secrets:
        # Misconfigured, not the sender's fault: 503 makes Stripe retry once we are fixed.
        logger.error("stripe webhook received but no webhook secret is configured")
        raise Problem(503, "webhook-not-configured", "Webhooks are not configured", "Try again later.")
    if not header:
        WEBHOOK_ERRORS.inc()
        raise invalid_signature("The Stripe-Signature header is missing.")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        WEBHOOK_ERRORS.inc()
        raise invalid_signature("The body is not UTF-8.") from None
    import stripe  # loaded on the first event, not with every API process

    last: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, TOLERANCE_SECONDS)
            break
        except stripe.SignatureVerificationError as exc:
            last = exc
    else:
        WEBHOOK_ERRORS.inc()
        reason = "stale" if last is not None and "tolerance" in str(last) else "mismatch"
        logger.warning("stripe webhook refused: signature %s", reason)
        raise invalid_signature(
            "The signature is older than 300 seconds." if reason == "stale" else "The signature does not match."
        )
    try:
        event = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        WEBHOOK_ERRORS.inc()
        raise invalid_signature("The signed body is not a JSON event.") from None
    prepared = prepare(event)
    if prepared is None:
        WEBHOOK_ERRORS.inc()
        raise invalid_signature("The signed body is not a Stripe event.")
    return prepared


def prepare(event: Any) -> dict[str, Any] | None:
    """A Stripe event as we store it (bearer URLs dropped), or None when it is not one."""
    return _without_bearer_urls(event) if _is_event(event) else None


def _is_event(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= MAX_EVENT_ID
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= MAX_EVENT_TYPE
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    )


def _without_bearer_urls(event: dict[str, Any]) -> dict[str, Any]:
    obj = event["data"]["object"]
    if obj.get("object") not in _BEARER_OBJECTS:
        return event
    previous = event["data"].get("previous_attributes")
    for field in _BEARER_FIELDS:
        if obj.get(field) is not None:
            obj[field] = None
        if isinstance(previous, dict):
            previous.pop(field, None)
    return event


async def store(session: AsyncSession, event: dict[str, Any]) -> Received:
    """Store a verified event (from the endpoint or the recovery job) once; a job only when new."""
    return await receive(session, SOURCE, event["id"], event, event_type=event["type"])


__all__ = [
    "SIGNATURE_HEADER",
    "SOURCE",
    "TOLERANCE_SECONDS",
    "invalid_signature",
    "prepare",
    "store",
    "verify",
    "webhook_secrets",
]
