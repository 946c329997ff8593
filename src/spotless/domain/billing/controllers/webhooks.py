"""POST /v1/payments/stripe/webhook: Stripe's deliveries (platform and Connect events).

Public (Stripe has no bearer token; the signature is the authentication) and rate limited as a
public route. Verify, store, answer: processing is the inbox job (see `billing/webhooks.py`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import webhooks
from spotless.lib.inbox import InboxAck
from spotless.settings import Settings

# Exempt from the per-address quota: Stripe delivers from a few addresses, in bursts (its retries
# after an outage of ours come all at once), and a 429 would only delay payments by its back-off.
# What protects the route is the signature: a forged body costs one HMAC and a 400, stores nothing.
PUBLIC_WEBHOOK = {"public": True, "rate_limit": "exempt"}


class StripeWebhookController(Controller):
    path = "/v1/payments/stripe/webhook"
    tags = ["payments"]

    @post(
        operation_id="receiveStripeWebhook",
        summary="Stripe event delivery: verified on the raw body (Stripe-Signature, 300 s tolerance), "
        "stored once per event id and processed by a job; 200 for every verified event, matched or not",
        opt=PUBLIC_WEBHOOK,
        status_code=200,
        responses={200: ResponseSpec(data_container=InboxAck, description="Stored (or a duplicate of a stored event)")},
    )
    async def receive_stripe_webhook(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings
    ) -> Response[InboxAck]:
        raw = await request.body()
        event = webhooks.verify(raw, request.headers.get(webhooks.SIGNATURE_HEADER), webhooks.webhook_secrets(settings))
        received = await webhooks.store(db_session, event)
        return Response(InboxAck(received=True, duplicate=received.duplicate), status_code=200)
