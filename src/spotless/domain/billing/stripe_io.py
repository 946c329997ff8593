"""The Stripe calls of webhook processing, refunds and recovery, through the one gateway
(`billing.stripe_client`: retries, time budget, circuit breaker, idempotency keys) on an
organisation's connected account. Objects come back as plain dicts; a missing object is None (an
event about something deleted since, or never ours, is not an error)."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from spotless.domain.billing.stripe_client import StripeRejected, stripe_gateway
from spotless.lib.errors import Problem
from spotless.settings import Settings

INVOICE_KEY = "invoice_id"  # in Checkout Session, PaymentIntent and Charge metadata

_SERVICES = {
    "checkout.session": lambda v1: v1.checkout.sessions,
    "payment_intent": lambda v1: v1.payment_intents,
    "charge": lambda v1: v1.charges,
    "refund": lambda v1: v1.refunds,
    "dispute": lambda v1: v1.disputes,
    "setup_intent": lambda v1: v1.setup_intents,
    "payment_method": lambda v1: v1.payment_methods,
}


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


async def retrieve(
    settings: Settings, account: str, kind: str, object_id: str, *, expand: list[str] | None = None
) -> dict[str, Any] | None:
    """The object as Stripe holds it now, or None when Stripe does not know it."""
    service = _SERVICES[kind]
    params: dict[str, Any] = {"expand": expand} if expand else {}
    try:
        obj = await stripe_gateway(settings.stripe).get(
            lambda v1, options: service(v1).retrieve_async(object_id, params, options),
            account=account,
            op=f"retrieve_{kind.replace('.', '_')}",
        )
    except StripeRejected as exc:
        if exc.is_missing:
            return None
        raise
    return _as_dict(obj)


async def retrieve_account(settings: Settings, account: str) -> dict[str, Any] | None:
    try:
        obj = await stripe_gateway(settings.stripe).get(
            lambda v1, options: v1.accounts.retrieve_async(account, None, options), op="retrieve_account"
        )
    except StripeRejected as exc:
        if exc.is_missing:
            return None
        raise
    return _as_dict(obj)


def invoice_ref(obj: dict[str, Any] | None) -> UUID | None:
    metadata = (obj or {}).get("metadata") or {}
    raw = metadata.get(INVOICE_KEY) or (obj or {}).get("client_reference_id")
    try:
        return UUID(str(raw)) if raw else None
    except ValueError:
        return None


async def invoice_of(settings: Settings, account: str, obj: dict[str, Any]) -> UUID | None:
    """The invoice a Stripe object (refund, charge, dispute) belongs to: its own metadata, else its
    PaymentIntent's (re-read)."""
    found = invoice_ref(obj)
    if found is not None:
        return found
    pi_id = obj.get("payment_intent")
    pi_id = pi_id if isinstance(pi_id, str) else (pi_id or {}).get("id")
    if not pi_id:
        return None
    return invoice_ref(await retrieve(settings, account, "payment_intent", pi_id))


def caller_key(*parts: object) -> str:
    """A short, stable digest of a caller's own idempotency key (theirs may be 255 characters)."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


async def create_refund(
    settings: Settings, account: str, params: dict[str, Any], ids: tuple[object, ...]
) -> dict[str, Any]:
    """A refund at Stripe (idempotency key `spotless:refund:<ids>`), or a 409 the office can act on
    when Stripe refuses it; an outage is the gateway's 503."""
    try:
        obj = await stripe_gateway(settings.stripe).post(
            "refund", ids, lambda v1, options: v1.refunds.create_async(params, options), account=account
        )
    except StripeRejected as exc:
        raise Problem(409, "refund-refused-by-stripe", "Stripe refused the refund", exc.detail[:500]) from None
    return _as_dict(obj)


async def list_events(settings: Settings, account: str, params: dict[str, Any]) -> dict[str, Any]:
    page = await stripe_gateway(settings.stripe).get(
        lambda v1, options: v1.events.list_async(params, options), account=account, op="list_events"
    )
    return _as_dict(page)


__all__ = [
    "INVOICE_KEY",
    "caller_key",
    "create_refund",
    "invoice_of",
    "invoice_ref",
    "list_events",
    "retrieve",
    "retrieve_account",
]
