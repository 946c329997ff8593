"""Stripe's part of the settings (spotless.settings reads it with the rest; kept apart for size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta


def _var(name: str, **bounds: Any) -> Meta:
    """As spotless.settings._var: the bounds, and the variable named in errors."""
    return Meta(extra={"env": name}, **bounds)


class StripeSettings(msgspec.Struct, frozen=True, kw_only=True):
    # The platform's secret key (Connect: calls for an organisation carry its account id) and the
    # signing secret of the webhook endpoint. Both required in prod; dev/test use placeholders.
    secret_key: str = "sk_test_spotless_placeholder"
    webhook_secret: str = "whsec_spotless_placeholder"
    # Tests point this at the local fake (tests/support/fake_stripe.py).
    api_base: Annotated[str, _var("STRIPE_API_BASE", pattern=r"^https?://[^\s/]+(:\d+)?/?$")] = "https://api.stripe.com"
    # The whole budget of one call, retries included: an outage answers 503 after at most this long.
    timeout_seconds: Annotated[float, _var("STRIPE_TIMEOUT_SECONDS", gt=0, le=120)] = 10.0
    # The library's default is no retry at all; retries reuse the call's idempotency key.
    max_network_retries: Annotated[int, _var("STRIPE_MAX_NETWORK_RETRIES", ge=0, le=10)] = 2
    # This many failed calls in a row (timeouts, connection errors, 5xx after retries) open the
    # circuit: calls then answer 503 at once; every cool-down one probe decides whether to close it.
    circuit_failure_threshold: Annotated[int, _var("STRIPE_CIRCUIT_FAILURE_THRESHOLD", ge=1, le=1_000)] = 3
    circuit_cooldown_seconds: Annotated[float, _var("STRIPE_CIRCUIT_COOLDOWN_SECONDS", gt=0, le=3_600)] = 30.0
    circuit_probe_timeout_seconds: Annotated[float, _var("STRIPE_CIRCUIT_PROBE_TIMEOUT_SECONDS", gt=0, le=60)] = 5.0
    # Where Checkout sends the payer back, and where Connect onboarding returns (or restarts).
    checkout_success_url: Annotated[str, _var("STRIPE_CHECKOUT_SUCCESS_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/pay/success"
    )
    checkout_cancel_url: Annotated[str, _var("STRIPE_CHECKOUT_CANCEL_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/pay/cancel"
    )
    connect_return_url: Annotated[str, _var("STRIPE_CONNECT_RETURN_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/settings/payments"
    )
    connect_refresh_url: Annotated[str, _var("STRIPE_CONNECT_REFRESH_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/settings/payments/refresh"
    )
    # The app's page a client opens from a pay link (`<url>/<token>`) and from a card-update link
    # (`<url>/<token>/card`); it calls /v1/pay/{token} and /v1/pay/{token}/card-setup. Follow-up
    # steps send both (billing.followup).
    pay_link_url: Annotated[str, _var("BILLING_PAY_LINK_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/pay"
    )
    # Lifetime of a Checkout Session (Stripe accepts 30 minutes to 24 hours).
    checkout_expires_minutes: Annotated[int, _var("STRIPE_CHECKOUT_EXPIRES_MINUTES", ge=30, le=1_440)] = 1_440


def load_stripe_settings(env: Any, is_prod: bool) -> StripeSettings:
    """From the environment (`env`: settings' reader, with its str/int/float and their errors)."""
    defaults = StripeSettings()
    return StripeSettings(
        secret_key=env.str("STRIPE_SECRET_KEY", "" if is_prod else defaults.secret_key) or "",
        webhook_secret=env.str("STRIPE_WEBHOOK_SECRET", "" if is_prod else defaults.webhook_secret) or "",
        api_base=(env.str("STRIPE_API_BASE", defaults.api_base) or defaults.api_base).rstrip("/"),
        timeout_seconds=env.float("STRIPE_TIMEOUT_SECONDS", defaults.timeout_seconds),
        max_network_retries=env.int("STRIPE_MAX_NETWORK_RETRIES", defaults.max_network_retries),
        circuit_failure_threshold=env.int("STRIPE_CIRCUIT_FAILURE_THRESHOLD", defaults.circuit_failure_threshold),
        circuit_cooldown_seconds=env.float("STRIPE_CIRCUIT_COOLDOWN_SECONDS", defaults.circuit_cooldown_seconds),
        circuit_probe_timeout_seconds=env.float(
            "STRIPE_CIRCUIT_PROBE_TIMEOUT_SECONDS", defaults.circuit_probe_timeout_seconds
        ),
        checkout_success_url=env.str("STRIPE_CHECKOUT_SUCCESS_URL") or defaults.checkout_success_url,
        checkout_cancel_url=env.str("STRIPE_CHECKOUT_CANCEL_URL") or defaults.checkout_cancel_url,
        connect_return_url=env.str("STRIPE_CONNECT_RETURN_URL") or defaults.connect_return_url,
        connect_refresh_url=env.str("STRIPE_CONNECT_REFRESH_URL") or defaults.connect_refresh_url,
        checkout_expires_minutes=env.int("STRIPE_CHECKOUT_EXPIRES_MINUTES", defaults.checkout_expires_minutes),
        pay_link_url=(env.str("BILLING_PAY_LINK_URL") or defaults.pay_link_url).rstrip("/"),
    )


def stripe_prod_problems(stripe: StripeSettings, secret_weakness: Callable[[str], str | None]) -> list[str]:
    """The platform's secret key (sk_live_...) and the webhook signing secret (whsec_...) are
    required and strong in prod; the API is reached over https."""
    problems = []
    for name, value in (("STRIPE_SECRET_KEY", stripe.secret_key), ("STRIPE_WEBHOOK_SECRET", stripe.webhook_secret)):
        weakness = secret_weakness(value)
        if weakness:
            problems.append(f"{name} {weakness}; copy it from the Stripe dashboard (Developers)")
    if not stripe.api_base.startswith("https://"):
        problems.append("STRIPE_API_BASE must be an https:// URL in prod")
    return problems


def stripe_urls(stripe: StripeSettings) -> dict[str, str]:
    """The URLs that must not point at this machine in prod."""
    return {
        "STRIPE_API_BASE": stripe.api_base,
        "STRIPE_CHECKOUT_SUCCESS_URL": stripe.checkout_success_url,
        "STRIPE_CHECKOUT_CANCEL_URL": stripe.checkout_cancel_url,
        "STRIPE_CONNECT_RETURN_URL": stripe.connect_return_url,
        "STRIPE_CONNECT_REFRESH_URL": stripe.connect_refresh_url,
        "BILLING_PAY_LINK_URL": stripe.pay_link_url,
    }
