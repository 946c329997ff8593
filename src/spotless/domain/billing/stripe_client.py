"""The one way Spotless calls Stripe.

    gateway = stripe_gateway(settings.stripe)
    session = await gateway.post(
        "checkout", (invoice_id, attempt),
        lambda v1, options: v1.checkout.sessions.create_async(params, options),
        account=account_id,
    )
    account = await gateway.get(lambda v1, options: v1.accounts.retrieve_async(account_id, options=options))

Every call:
- goes through one `stripe.StripeClient` per process (and event loop) built from settings: its
  `base_addresses` (tests point them at the local fake), the async HTTPX transport with a timeout
  (no blocking calls: `allow_sync_methods=False`), and `max_network_retries` set explicitly (the
  library's default is none; it retries connection errors, 409 and 5xx, honouring
  Stripe-Should-Retry);
- carries `stripe_account` when it acts for an organisation's connected account (Connect);
- when it is a POST, carries a deterministic idempotency key derived from our ids,
  `spotless:<op>:<id>:<id>...`: the library's retries reuse it, and so does a repeated job or click,
  so Stripe does the thing once (`idempotency_key`);
- has one time budget, retries included (STRIPE_TIMEOUT_SECONDS): a Stripe outage answers
  `503 /problems/payments-unavailable` with Retry-After, never a hanging request;
- passes the process-wide circuit breaker (lib/circuit.py, `circuit_state{circuit="stripe"}`):
  STRIPE_CIRCUIT_FAILURE_THRESHOLD outages in a row open it; while open, calls fail fast with the
  same 503; every STRIPE_CIRCUIT_COOLDOWN_SECONDS one background probe (GET /v1/balance, any
  answer below 500 counts) decides whether it closes. An error reply (a declined card, a bad
  parameter) is Stripe answering, not an outage: it raises `StripeRejected` and never opens it.

Webhook signature checks do not pass here (they need no call to Stripe, and must work during an
outage of the API).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx
from prometheus_client import Counter, Gauge, Histogram

from spotless.lib.circuit import CircuitBreaker, CircuitMetrics
from spotless.lib.errors import Problem
from spotless.settings import StripeSettings

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger("spotless.billing.stripe")

T = TypeVar("T")

CIRCUIT_STATE = Gauge(
    "circuit_state",
    "Circuit breaker state per external dependency: 0 closed (calls go out), 1 open (calls fail fast)",
    ["circuit"],
    multiprocess_mode="livemax",
)
CIRCUIT_OPENED = Counter("circuit_opened_total", "Times a circuit breaker opened", ["circuit"])
CIRCUIT_REFUSED = Counter(
    "circuit_refused_total", "Calls refused without trying because the circuit was open", ["circuit"]
)
CIRCUIT_PROBES = Counter("circuit_probes_total", "Probes of an open circuit", ["circuit", "outcome"])
CIRCUIT_METRICS = CircuitMetrics(CIRCUIT_STATE, CIRCUIT_OPENED, CIRCUIT_REFUSED, CIRCUIT_PROBES, "circuit")

STRIPE_CALLS = Counter(
    "stripe_calls_total",
    "Calls to the Stripe API by operation and outcome (ok, rejected, unavailable, refused)",
    ["operation", "outcome"],
)
STRIPE_SECONDS = Histogram(
    "stripe_call_seconds",
    "Duration of calls to the Stripe API, retries included",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

CIRCUIT_NAME = "stripe"
MAX_KEY_LENGTH = 255


class PaymentsUnavailable(Problem):
    """Stripe is not answering (or the circuit is open): 503 with Retry-After."""

    def __init__(self, retry_after: float, detail: str = "") -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            503,
            "payments-unavailable",
            "Card payments are unavailable",
            detail or "The payment provider is not answering. Try again in a moment.",
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
        )


class StripeRejected(Problem):
    """Stripe answered with an error (a declined card, a parameter it refuses, a missing object).
    A 502 problem for API callers; services read `code`, `decline_code` and `http_status`."""

    def __init__(self, error: stripe.StripeError) -> None:
        self.error = error
        self.http_status = error.http_status or 0
        self.code = getattr(error, "code", None)
        body: Any = error.json_body if isinstance(error.json_body, dict) else {}
        details: dict[str, Any] = body.get("error") if isinstance(body.get("error"), dict) else {}
        self.decline_code: str | None = details.get("decline_code")
        self.error_type: str | None = details.get("type")
        payment_intent = details.get("payment_intent")
        self.payment_intent_id: str | None = payment_intent.get("id") if isinstance(payment_intent, dict) else None
        super().__init__(
            502,
            "payment-provider-error",
            "The payment provider refused the request",
            str(details.get("message") or error.user_message or "Stripe refused the request"),
            provider_code=self.code,
        )

    @property
    def is_missing(self) -> bool:
        return self.http_status == 404 or self.code == "resource_missing"

    @property
    def is_card_error(self) -> bool:
        import stripe

        return self.error_type == "card_error" or isinstance(self.error, stripe.CardError)


def idempotency_key(op: str, *ids: object) -> str:
    """`spotless:<op>:<id>...`: the same operation on the same ids is the same request to Stripe
    (keys are kept 24 h by Stripe; an attempt number belongs in `ids` when a retry is a new try)."""
    key = ":".join(["spotless", op, *(str(i) for i in ids)])
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key longer than {MAX_KEY_LENGTH} characters: {key[:60]}...")
    return key


def _is_outage(exc: BaseException) -> bool:
    import stripe

    if isinstance(exc, (TimeoutError, stripe.APIConnectionError, httpx.TransportError, OSError)):
        return True
    if isinstance(exc, stripe.StripeError):
        return (exc.http_status or 0) >= 500
    return False


Call = Callable[[Any, dict[str, Any]], Awaitable[T]]


class StripeGateway:
    """One StripeClient (per event loop: its HTTPX pool belongs to one loop) and the process'
    circuit breaker. Build with `stripe_gateway(settings)`."""

    def __init__(self, settings: StripeSettings, breaker: CircuitBreaker) -> None:
        self.settings = settings
        self.breaker = breaker
        import stripe  # ~0.4 s to import: paid by the first process that talks to Stripe, not by every API start

        timeout = httpx.Timeout(settings.timeout_seconds, connect=min(settings.timeout_seconds, 5.0))
        self.http_client = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=False)
        base = settings.api_base
        self.client = stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": base, "connect": base, "files": base, "meter_events": base},
            max_network_retries=settings.max_network_retries,
            http_client=self.http_client,
        )

    @property
    def v1(self) -> Any:
        return self.client.v1

    async def post(
        self, op: str, ids: tuple[object, ...] | list[object], call: Call[T], *, account: str | None = None
    ) -> T:
        """A POST (it changes something at Stripe): its idempotency key is `spotless:<op>:<ids>`."""
        options: dict[str, Any] = {"idempotency_key": idempotency_key(op, *ids)}
        if account:
            options["stripe_account"] = account
        return await self._run(op, call, options)

    async def get(self, call: Call[T], *, account: str | None = None, op: str = "read") -> T:
        """A read (no idempotency key needed: it changes nothing)."""
        options: dict[str, Any] = {"stripe_account": account} if account else {}
        return await self._run(op, call, options)

    async def _run(self, op: str, call: Call[T], options: dict[str, Any]) -> T:
        import stripe

        if not self.breaker.allow():
            STRIPE_CALLS.labels(op, "refused").inc()
            raise PaymentsUnavailable(self.breaker.retry_after() or self.settings.circuit_cooldown_seconds)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                result = await call(self.client.v1, options)
        except stripe.StripeError as exc:
            if not _is_outage(exc):
                self.breaker.success()
                STRIPE_CALLS.labels(op, "rejected").inc()
                raise StripeRejected(exc) from exc
            self._outage(op, exc)
        except Exception as exc:
            if not _is_outage(exc):
                raise
            self._outage(op, exc)
        finally:
            STRIPE_SECONDS.labels(op).observe(time.perf_counter() - started)
        self.breaker.success()
        STRIPE_CALLS.labels(op, "ok").inc()
        return result

    def _outage(self, op: str, exc: BaseException) -> NoReturn:
        STRIPE_CALLS.labels(op, "unavailable").inc()
        self.breaker.failure(exc)
        logger.warning(
            "stripe %s failed: %s",
            op,
            type(exc).__name__,
            extra={"operation": op, "circuit_open": self.breaker.is_open},
        )
        retry = self.breaker.retry_after() or min(self.settings.circuit_cooldown_seconds, 5.0)
        raise PaymentsUnavailable(retry) from exc

    async def aclose(self) -> None:
        await self.http_client.close_async()


async def _probe(settings: StripeSettings) -> None:
    """Stripe answers (any status below 500) within the probe timeout; raises otherwise."""
    async with httpx.AsyncClient(timeout=settings.circuit_probe_timeout_seconds) as client:
        response = await client.get(
            f"{settings.api_base}/v1/balance", headers={"Authorization": f"Bearer {settings.secret_key}"}
        )
    if response.status_code >= 500:
        raise ConnectionError(f"Stripe answered the probe with {response.status_code}")


_BREAKERS: dict[tuple[str, str], CircuitBreaker] = {}
_GATEWAYS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[StripeSettings, StripeGateway]] = (
    weakref.WeakKeyDictionary()
)


def stripe_breaker(settings: StripeSettings) -> CircuitBreaker:
    """The process' circuit breaker for this Stripe API (one per base address and key)."""
    key = (settings.api_base, settings.secret_key[-8:])
    breaker = _BREAKERS.get(key)
    if breaker is None:
        breaker = CircuitBreaker(
            CIRCUIT_NAME,
            lambda: _probe(settings),
            cooldown_seconds=settings.circuit_cooldown_seconds,
            probe_timeout_seconds=settings.circuit_probe_timeout_seconds,
            metrics=CIRCUIT_METRICS,
            outage=_is_outage,
            failure_threshold=settings.circuit_failure_threshold,
        )
        _BREAKERS[key] = breaker
    return breaker


def stripe_gateway(settings: StripeSettings) -> StripeGateway:
    """The gateway for the running event loop (built on first use; shared by every request)."""
    loop = asyncio.get_running_loop()
    per_loop = _GATEWAYS.setdefault(loop, {})
    gateway = per_loop.get(settings)
    if gateway is None:
        gateway = StripeGateway(settings, stripe_breaker(settings))
        per_loop[settings] = gateway
    return gateway


def reset_stripe() -> None:
    """Forget gateways and close every circuit (tests; a process that rebuilds its clients)."""
    for breaker in _BREAKERS.values():
        breaker.reset()
    _BREAKERS.clear()
    _GATEWAYS.clear()
