"""A small in-memory fake of the Stripe API endpoints Spotless calls, served on loopback.

Tests never reach Stripe. The fake is a plain ASGI app run by uvicorn in a thread of the test
process (so tests can reach into its state and its controls directly, and API nodes or workers
started as child processes can call it over TCP like the real thing):

    fake = FakeStripe().start()        # or the `fake_stripe` fixture below
    env = {"STRIPE_API_BASE": fake.base_url, "STRIPE_WEBHOOK_SECRET": fake.webhook_secret}

What it honours, as Stripe does:
- form-encoded bodies and queries with bracket keys (`metadata[invoice_id]=...`, `types[0]=...`);
- `Stripe-Account`: objects of a connected account are visible only with its id in that header;
- `Idempotency-Key` (scoped per account): the same key answers the saved status and body again
  (`Idempotent-Replayed: true`), different parameters under a used key answer 400;
- errors as Stripe shapes them (`{"error": {"type", "code", "message", ...}}`).

Controls for tests: `fail(status, times, path)` (answered before the idempotency layer, as a load
balancer would: not saved under the key), `hang(path)` / `heal()`, `decline_next_charge()`,
`complete_session()`, `settle_async_payment()`, `update_account()`, `settle_refund()`,
`open_dispute()` / `update_dispute()` / `close_dispute()`; every request is in `requests`.
Every change makes an Event (listable with `delivery_success` / `types`); `signed_event()` builds
the body and `Stripe-Signature` header Stripe would POST for one (helper "hooks" uses them).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe
import uvicorn

from tests.support.processes import free_port

API_VERSION = "2025-09-30.clover"
WEBHOOK_SECRET = "whsec_fake_stripe_test_secret_0123456789"

Json = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class StripeFailure(Exception):
    """An error answer, shaped as Stripe's."""

    def __init__(self, status: int, type_: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"error": {"type": type_, "message": message, **extra}}


def missing(kind: str, object_id: str) -> StripeFailure:
    return StripeFailure(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param="id"
    )


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeFailure:
    extra = {k: v for k, v in (("param", param), ("code", code)) if v}
    return StripeFailure(400, "invalid_request_error", message, **extra)


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """`a[b][0][c]=1` into {"a": {"b": [{"c": "1"}]}} (the Stripe library's encoding)."""
    root: Json = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        parts = [p if p != "[]" else "" for p in parts]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    if part == "" or (part in node and isinstance(node[part], list)):
                        node.setdefault(part, []).append(value)
                    else:
                        node[part] = value
                else:
                    node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        if list(converted) == [""]:
            return converted[""]
        return converted
    return node


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param) from None


def _bool(value: Any) -> bool:
    return str(value).lower() in ("true", "1")


@dataclass
class Recorded:
    method: str
    path: str
    params: Json
    account: str | None
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class Fault:
    status: int | None  # None: hang
    times: int | None  # None: until healed
    path: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or path.startswith(self.path)) and (self.method is None or method == self.method)


@dataclass
class Card:
    brand: str = "visa"
    last4: str = "4242"
    exp_month: int = 12
    exp_year: int = 2034


@dataclass
class _Account:
    """One Stripe account's objects (the platform is account None)."""

    objects: dict[str, Json] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class FakeStripe:
    def __init__(self, webhook_secret: str = WEBHOOK_SECRET) -> None:
        self.webhook_secret = webhook_secret
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeStripe:
        self.port = free_port()
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-stripe", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Stripe server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str | None, _Account] = {None: _Account()}
            self.idempotent: dict[tuple[str | None, str], tuple[str, int, bytes]] = {}
            self.faults: list[Fault] = []
            self.declines: list[tuple[str, str]] = []
            self.refunds_pending = False
            self.requests.clear()

    # --- controls ------------------------------------------------------------------------------

    def fail(
        self, status: int = 500, times: int | None = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """The next `times` matching requests (all while None) answer `status` without running."""
        with self.lock:
            self.faults.append(Fault(status, times, path, method))

    def hang(self, path: str | None = None, times: int | None = None, method: str | None = None) -> None:
        """Matching requests get no answer until `heal()` (or the client gives up)."""
        with self.lock:
            self.faults.append(Fault(None, times, path, method))

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()

    def decline_next_charge(
        self, code: str = "card_declined", decline_code: str = "insufficient_funds", times: int = 1
    ) -> None:
        with self.lock:
            self.declines.extend([(code, decline_code)] * times)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received (faulted ones included), by method and path prefix."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))
            )

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))
            ]

    def get(self, object_id: str, account: str | None = None) -> Json:
        with self.lock:
            return json.loads(json.dumps(self._space(account).objects[object_id]))

    def find(self, object_id: str) -> tuple[str | None, Json]:
        """An object held in any account: (account, object)."""
        with self.lock:
            for account, space in self.accounts.items():
                if object_id in space.objects:
                    return account, json.loads(json.dumps(space.objects[object_id]))
        raise KeyError(object_id)

    def objects(self, kind: str, account: str | None = None) -> list[Json]:
        with self.lock:
            return [json.loads(json.dumps(o)) for o in self._space(account).objects.values() if o["object"] == kind]

    def update_account(self, account_id: str, **fields: Any) -> Json:
        """E.g. charges_enabled=True, payouts_enabled=True, details_submitted=True (an
        `account.updated` event on the platform, with `account` set, as Connect sends it)."""
        with self.lock:
            account = self._space(None).objects[account_id]
            previous = {k: account.get(k) for k in fields}
            account.update(fields)
            if fields.get("charges_enabled"):
                account["requirements"] = {"currently_due": [], "disabled_reason": None}
            self._event("account.updated", account, account_id, previous=previous)
            return json.loads(json.dumps(account))

    def complete_session(
        self, session_id: str, *, payment_status: str = "paid", card: Card | None = None, account: str | None = None
    ) -> Json:
        """The payer finished Checkout. Payment mode: a PaymentIntent and Charge (status
        `processing` when payment_status is "unpaid", an async method; see settle_async_payment);
        setup mode: a SetupIntent and its card PaymentMethod."""
        card = card or Card()
        with self.lock:
            account = account if account is not None else self._owner(session_id)
            space = self._space(account)
            session = space.objects[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}")
            customer = session.get("customer")
            if session["mode"] == "payment":
                pm = self._payment_method(space, card, customer)
                pi = self._payment_intent(
                    space,
                    account,
                    amount=session["amount_total"],
                    currency=session["currency"],
                    metadata=dict(session["_payment_intent_data"].get("metadata") or {}),
                    customer=customer,
                    payment_method=pm["id"],
                    succeed=payment_status == "paid",
                )
                session["payment_intent"] = pi["id"]
            else:
                pm = self._payment_method(space, card, customer)
                seti = {
                    "id": _new_id("seti"),
                    "object": "setup_intent",
                    "status": "succeeded",
                    "customer": customer,
                    "payment_method": pm["id"],
                    "usage": "off_session",
                    "metadata": dict(session["_setup_intent_data"].get("metadata") or {}),
                    "created": int(time.time()),
                    "livemode": False,
                }
                space.objects[seti["id"]] = seti
                session["setup_intent"] = seti["id"]
                self._event("setup_intent.succeeded", seti, account)
            session["status"] = "complete"
            session["payment_status"] = payment_status if session["mode"] == "payment" else "no_payment_required"
            self._event("checkout.session.completed", session, account)
            return self._public(session)

    def settle_async_payment(self, session_id: str, *, succeeded: bool = True) -> Json:
        with self.lock:
            account = self._owner(session_id)
            space = self._space(account)
            session = space.objects[session_id]
            pi = space.objects[session["payment_intent"]]
            if succeeded:
                self._succeed(space, account, pi)
                session["payment_status"] = "paid"
                self._event("checkout.session.async_payment_succeeded", session, account)
            else:
                pi["status"] = "requires_payment_method"
                pi["last_payment_error"] = {"code": "payment_method_provider_decline", "message": "declined"}
                self._event("payment_intent.payment_failed", pi, account)
                self._event("checkout.session.async_payment_failed", session, account)
            return self._public(session)

    def expire_session(self, session_id: str) -> Json:
        with self.lock:
            account = self._owner(session_id)
            return self._expire(self._space(account), account, session_id)

    def settle_refund(self, refund_id: str, status: str = "succeeded", failure_reason: str | None = None) -> Json:
        with self.lock:
            account = self._owner(refund_id)
            space = self._space(account)
            refund = space.objects[refund_id]
            refund["status"] = status
            charge = space.objects[refund["charge"]]
            if status == "succeeded":
                self._apply_refund(space, account, charge, refund)
            elif status == "failed":
                refund["failure_reason"] = failure_reason or "lost_or_stolen_card"
                self._event("refund.failed", refund, account)
            self._event("refund.updated", refund, account)
            return self._public(refund)

    def open_dispute(
        self, payment_intent_id: str, *, reason: str = "fraudulent", amount: int | None = None, fee: int = 1500
    ) -> Json:
        with self.lock:
            account = self._owner(payment_intent_id)
            space = self._space(account)
            pi = space.objects[payment_intent_id]
            charge = space.objects[pi["latest_charge"]]
            amount = charge["amount"] if amount is None else amount
            dispute = {
                "id": _new_id("dp"),
                "object": "dispute",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": pi["id"],
                "reason": reason,
                "status": "needs_response",
                "is_charge_refundable": False,
                "evidence_details": {"due_by": int(time.time()) + 7 * 86_400, "has_evidence": False},
                "balance_transactions": [
                    {"object": "balance_transaction", "amount": -amount, "fee": fee, "net": -amount - fee}
                ],
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
            space.objects[dispute["id"]] = dispute
            charge["disputed"] = True
            self._event("charge.dispute.created", dispute, account)
            self._event("charge.dispute.funds_withdrawn", dispute, account)
            return self._public(dispute)

    def update_dispute(self, dispute_id: str, status: str = "under_review") -> Json:
        with self.lock:
            account = self._owner(dispute_id)
            dispute = self._space(account).objects[dispute_id]
            dispute["status"] = status
            self._event("charge.dispute.updated", dispute, account)
            return self._public(dispute)

    def close_dispute(self, dispute_id: str, outcome: str = "won", *, fee_returned: int = 0) -> Json:
        """`fee_returned`: the dispute fee Stripe gives back with the reinstated funds (a negative
        `fee` on the reinstating balance transaction, as Stripe shows a returned fee)."""
        with self.lock:
            account = self._owner(dispute_id)
            dispute = self._space(account).objects[dispute_id]
            dispute["status"] = outcome
            if outcome == "won":
                amount = dispute["amount"]
                dispute["balance_transactions"].append(
                    {
                        "object": "balance_transaction",
                        "amount": amount,
                        "fee": -fee_returned,
                        "net": amount + fee_returned,
                    }
                )
                self._event("charge.dispute.funds_reinstated", dispute, account)
            self._event("charge.dispute.closed", dispute, account)
            return self._public(dispute)

    def events(self, account: str | None = None, type_: str | None = None) -> list[Json]:
        """Events in the order they happened (the API lists newest first)."""
        with self.lock:
            return [
                json.loads(json.dumps(e)) for e in self._space(account).events if type_ is None or e["type"] == type_
            ]

    def last_event(self, type_: str, account: str | None = None) -> Json:
        found = self.events(account, type_)
        if not found:
            raise KeyError(type_)
        return found[-1]

    def mark_delivered(self, event_id: str) -> None:
        with self.lock:
            for space in self.accounts.values():
                for event in space.events:
                    if event["id"] == event_id:
                        event["_delivered"] = True

    def signed_event(
        self, event: Json | str, *, secret: str | None = None, timestamp: int | None = None, account: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers Stripe would POST for `event` (an event dict, or the id of one
        held here): `Stripe-Signature` from `stripe.WebhookSignature.generate_signature_header`."""
        if isinstance(event, str):
            with self.lock:
                spaces = [self._space(account)] if account is not None else list(self.accounts.values())
                matches = [e for s in spaces for e in s.events if e["id"] == event]
            if not matches:
                raise KeyError(event)
            event = matches[0]
        payload = json.dumps({k: v for k, v in event.items() if not k.startswith("_")}, indent=2)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, secret or self.webhook_secret, timestamp=timestamp
        )
        return payload.encode(), {"stripe-signature": header, "content-type": "application/json; charset=utf-8"}

    def event_for(self, type_: str, object_id: str, *, previous: Json | None = None) -> Json:
        """A new event of `type_` for an object held here (in its current state)."""
        with self.lock:
            account = self._owner(object_id)
            return self._event(type_, self._space(account).objects[object_id], account, previous=previous)

    # --- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode()
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body.decode(), keep_blank_values=True)
        params = decode_form(pairs)
        account = headers.get("stripe-account")
        key = headers.get("idempotency-key")
        record = Recorded(method, path, params, account, key)
        with self.lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault is not None:
            if fault.status is None:
                await self._hang(method, path)
                record.status = 0
                return  # the client gave up, or the server stops
            record.status = fault.status
            await self._send(send, fault.status, {"error": {"type": "api_error", "message": "fake outage"}})
            return
        status, payload, replayed = self._handle(method, path, params, account, key)
        record.status, record.replayed = status, replayed
        extra = {"idempotent-replayed": "true"} if replayed else {}
        if key:
            extra["idempotency-key"] = key
        await self._send_raw(send, status, payload, extra)

    async def _hang(self, method: str, path: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.lock:
                if not any(f.status is None and f.matches(method, path) for f in self.faults):
                    return
            if self._server is not None and self._server.should_exit:
                return
            await asyncio.sleep(0.05)

    async def _send(self, send: Send, status: int, body: Json) -> None:
        await self._send_raw(send, status, json.dumps(body).encode(), {})

    async def _send_raw(self, send: Send, status: int, payload: bytes, extra: dict[str, str]) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"request-id", f"req_{secrets.token_hex(8)}".encode()),
            (b"stripe-version", API_VERSION.encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _handle(
        self, method: str, path: str, params: Json, account: str | None, key: str | None
    ) -> tuple[int, bytes, bool]:
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        with self.lock:
            if method == "POST" and key:
                saved = self.idempotent.get((account, key))
                if saved is not None:
                    if saved[0] != fingerprint:
                        failure = StripeFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{key}' if you meant to execute a "
                            "different request.",
                        )
                        return failure.status, json.dumps(failure.body).encode(), False
                    return saved[1], saved[2], True
            try:
                if account is not None and account not in self.accounts:
                    raise StripeFailure(
                        403,
                        "invalid_request_error",
                        "The provided key does not have access to account "
                        f"'{account}' (or that account does not exist).",
                        code="account_invalid",
                    )
                status, body = 200, self._route(method, path, params, account)
            except StripeFailure as failure:
                status, body = failure.status, failure.body
            payload = json.dumps(body).encode()
            if method == "POST" and key:
                self.idempotent[(account, key)] = (fingerprint, status, payload)
            return status, payload, False

    def _route(self, method: str, path: str, params: Json, account: str | None) -> Json:
        for route_method, pattern, handler in self._routes:
            if route_method != method:
                continue
            found = re.fullmatch(pattern, path)
            if found:
                return handler(self, params, account, *found.groups())
        raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    # --- state helpers (called with the lock held) -----------------------------------------------

    def _space(self, account: str | None) -> _Account:
        try:
            return self.accounts[account]
        except KeyError:
            raise missing("account", str(account)) from None

    def _owner(self, object_id: str) -> str | None:
        for account, space in self.accounts.items():
            if object_id in space.objects:
                return account
        raise KeyError(object_id)

    def _public(self, obj: Json) -> Json:
        return {k: v for k, v in json.loads(json.dumps(obj)).items() if not k.startswith("_")}

    def _event(self, type_: str, obj: Json, account: str | None, previous: Json | None = None) -> Json:
        event: Json = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "type": type_,
            "data": {"object": self._public(obj), **({"previous_attributes": previous} if previous else {})},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "_delivered": False,
        }
        if account is not None:
            event["account"] = account
        self._space(account).events.append(event)
        return self._public(event)

    def _get(self, space: _Account, kind: str, label: str, object_id: str) -> Json:
        obj = space.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise missing(label, object_id)
        return obj

    def _expanded(self, space: _Account, obj: Json, params: Json) -> Json:
        out = self._public(obj)
        for path in params.get("expand") or []:
            node: Any = out
            parts = path.split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, dict):
                    break
                value = node.get(part)
                if isinstance(value, str) and value in space.objects:
                    node[part] = self._public(space.objects[value])
                    value = node[part]
                node = value if i < len(parts) - 1 else node
        return out

    def _payment_method(self, space: _Account, card: Card, customer: str | None) -> Json:
        pm = {
            "id": _new_id("pm"),
            "object": "payment_method",
            "type": "card",
            "card": {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year},
            "customer": customer,
            "created": int(time.time()),
            "livemode": False,
        }
        space.objects[pm["id"]] = pm
        return pm

    def _payment_intent(
        self,
        space: _Account,
        account: str | None,
        *,
        amount: int,
        currency: str,
        metadata: Json,
        customer: str | None,
        payment_method: str | None,
        succeed: bool,
    ) -> Json:
        pi: Json = {
            "id": _new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "metadata": metadata,
            "status": "processing",
            "latest_charge": None,
            "last_payment_error": None,
            "created": int(time.time()),
            "livemode": False,
        }
        space.objects[pi["id"]] = pi
        if succeed:
            self._succeed(space, account, pi)
        else:
            self._event("payment_intent.processing", pi, account)
        return pi

    def _succeed(self, space: _Account, account: str | None, pi: Json) -> None:
        pm = space.objects.get(pi["payment_method"] or "") or {}
        charge = {
            "id": _new_id("ch"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"],
            "amount_refunded": 0,
            "currency": pi["currency"],
            "customer": pi["customer"],
            "payment_intent": pi["id"],
            "payment_method": pi["payment_method"],
            "payment_method_details": {"type": "card", "card": dict(pm.get("card") or {})},
            "metadata": dict(pi["metadata"]),
            "paid": True,
            "captured": True,
            "refunded": False,
            "disputed": False,
            "status": "succeeded",
            "created": int(time.time()),
            "livemode": False,
        }
        space.objects[charge["id"]] = charge
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"])
        self._event("charge.succeeded", charge, account)
        self._event("payment_intent.succeeded", pi, account)

    def _expire(self, space: _Account, account: str | None, session_id: str) -> Json:
        session = self._get(space, "checkout.session", "checkout.session", session_id)
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a '
                f'status of "{session["status"]}".'
            )
        session["status"] = "expired"
        session["url"] = None
        self._event("checkout.session.expired", session, account)
        return self._public(session)

    def _apply_refund(self, space: _Account, account: str | None, charge: Json, refund: Json) -> None:
        charge["amount_refunded"] += refund["amount"]
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._event("charge.refunded", charge, account)

    # --- endpoints -------------------------------------------------------------------------------

    def _balance(self, params: Json, account: str | None) -> Json:
        return {"object": "balance", "available": [], "pending": [], "livemode": False}

    def _create_account(self, params: Json, account: str | None) -> Json:
        if account is not None:
            raise invalid("A connected account cannot create accounts.")
        acct = {
            "id": f"acct_{secrets.token_hex(8)}",
            "object": "account",
            "type": params.get("type", "express"),
            "country": params.get("country", "CA"),
            "default_currency": (params.get("default_currency") or "cad").lower(),
            "email": params.get("email"),
            "business_profile": params.get("business_profile") or {},
            "capabilities": {k: "inactive" for k in (params.get("capabilities") or {})},
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "requirements": {"currently_due": ["external_account", "tos_acceptance.date"], "disabled_reason": None},
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.accounts[None].objects[acct["id"]] = acct
        self.accounts[acct["id"]] = _Account()
        return self._public(acct)

    def _retrieve_account(self, params: Json, account: str | None, account_id: str) -> Json:
        if account is not None and account != account_id:
            raise missing("account", account_id)
        return self._public(self._get(self.accounts[None], "account", "account", account_id))

    def _account_link(self, params: Json, account: str | None) -> Json:
        account_id = params.get("account") or ""
        self._get(self.accounts[None], "account", "account", account_id)
        for name in ("refresh_url", "return_url", "type"):
            if not params.get(name):
                raise invalid(f"Missing required param: {name}.", name)
        return {
            "object": "account_link",
            "created": int(time.time()),
            "expires_at": int(time.time()) + 300,
            "url": f"https://connect.stripe.com/setup/e/{account_id}/{secrets.token_urlsafe(16)}",
        }

    def _create_customer(self, params: Json, account: str | None) -> Json:
        customer = {
            "id": _new_id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
            "livemode": False,
        }
        self._space(account).objects[customer["id"]] = customer
        return self._public(customer)

    def _retrieve_customer(self, params: Json, account: str | None, customer_id: str) -> Json:
        return self._public(self._get(self._space(account), "customer", "customer", customer_id))

    def _create_session(self, params: Json, account: str | None) -> Json:
        space = self._space(account)
        mode = params.get("mode")
        if mode not in ("payment", "setup"):
            raise invalid("Invalid mode: must be one of payment, setup or subscription", "mode")
        for name in ("success_url",):
            if not params.get(name):
                raise invalid(f"Missing required param: {name}.", name)
        customer = params.get("customer")
        if customer:
            self._get(space, "customer", "customer", customer)
        amount, currency = None, params.get("currency")
        if mode == "payment":
            items = params.get("line_items") or []
            if not items:
                raise invalid("Missing required param: line_items.", "line_items")
            amount = 0
            for i, item in enumerate(items):
                price = item.get("price_data") or {}
                unit = _int(price.get("unit_amount"), f"line_items[{i}][price_data][unit_amount]")
                if unit < 0:
                    raise invalid("This value must be greater than or equal to 0.", "unit_amount")
                amount += unit * _int(item.get("quantity", 1), f"line_items[{i}][quantity]")
                currency = price.get("currency") or currency
            if amount < 50:
                raise invalid("The Checkout Session's total amount due must add up to at least $0.50 cad")
        elif not currency and not customer:
            raise invalid("Missing required param: currency.", "currency")
        now = int(time.time())
        expires_at = _int(params.get("expires_at", now + 86_400), "expires_at")
        if not now + 1_800 - 5 <= expires_at <= now + 86_400 + 5:
            raise invalid("The `expires_at` timestamp must be between 30 minutes and 24 hours.", "expires_at")
        session_id = f"cs_test_{secrets.token_urlsafe(24)}"
        session: Json = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#{secrets.token_urlsafe(16)}",
            "amount_total": amount,
            "amount_subtotal": amount,
            "currency": (currency or "cad").lower(),
            "client_reference_id": params.get("client_reference_id"),
            "customer": customer,
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {},
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "expires_at": expires_at,
            "payment_intent": None,
            "setup_intent": None,
            "created": now,
            "livemode": False,
            "_payment_intent_data": params.get("payment_intent_data") or {},
            "_setup_intent_data": params.get("setup_intent_data") or {},
            "_line_items": params.get("line_items") or [],
        }
        space.objects[session_id] = session
        return self._public(session)

    def _retrieve_session(self, params: Json, account: str | None, session_id: str) -> Json:
        space = self._space(account)
        return self._expanded(space, self._get(space, "checkout.session", "checkout.session", session_id), params)

    def _expire_session(self, params: Json, account: str | None, session_id: str) -> Json:
        return self._expire(self._space(account), account, session_id)

    def _create_payment_intent(self, params: Json, account: str | None) -> Json:
        space = self._space(account)
        amount = _int(params.get("amount"), "amount")
        if amount < 50:
            raise invalid("Amount must be at least $0.50 cad", "amount", code="amount_too_small")
        customer = params.get("customer")
        if customer:
            self._get(space, "customer", "customer", customer)
        pm_id = params.get("payment_method")
        if pm_id:
            pm = self._get(space, "payment_method", "PaymentMethod", pm_id)
            if customer and pm.get("customer") not in (None, customer):
                raise invalid("The provided PaymentMethod belongs to another customer.", "payment_method")
        confirm = _bool(params.get("confirm", False))
        pi: Json = {
            "id": _new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": (params.get("currency") or "cad").lower(),
            "customer": customer,
            "payment_method": pm_id,
            "metadata": params.get("metadata") or {},
            "status": "requires_confirmation" if pm_id else "requires_payment_method",
            "latest_charge": None,
            "last_payment_error": None,
            "off_session": _bool(params.get("off_session", False)),
            "created": int(time.time()),
            "livemode": False,
        }
        space.objects[pi["id"]] = pi
        if not confirm:
            return self._public(pi)
        if not pm_id:
            raise invalid("You cannot confirm this PaymentIntent because it's missing a payment method.")
        if self.declines:
            code, decline_code = self.declines.pop(0)
            error = {
                "code": code,
                "decline_code": decline_code,
                "message": "Your card was declined.",
                "type": "card_error",
            }
            pi.update(status="requires_payment_method", last_payment_error=error)
            self._event("payment_intent.payment_failed", pi, account)
            raise StripeFailure(
                402,
                "card_error",
                "Your card was declined.",
                code=code,
                decline_code=decline_code,
                payment_intent=self._public(pi),
            )
        self._succeed(space, account, pi)
        return self._public(pi)

    def _retrieve_payment_intent(self, params: Json, account: str | None, pi_id: str) -> Json:
        space = self._space(account)
        return self._expanded(space, self._get(space, "payment_intent", "payment_intent", pi_id), params)

    def _retrieve_setup_intent(self, params: Json, account: str | None, seti_id: str) -> Json:
        space = self._space(account)
        return self._expanded(space, self._get(space, "setup_intent", "setup_intent", seti_id), params)

    def _retrieve_payment_method(self, params: Json, account: str | None, pm_id: str) -> Json:
        return self._public(self._get(self._space(account), "payment_method", "PaymentMethod", pm_id))

    def _detach_payment_method(self, params: Json, account: str | None, pm_id: str) -> Json:
        pm = self._get(self._space(account), "payment_method", "PaymentMethod", pm_id)
        if pm.get("customer") is None:
            raise invalid("The payment method you provided is not attached to a customer so detachment is impossible.")
        pm["customer"] = None
        self._event("payment_method.detached", pm, account)
        return self._public(pm)

    def _create_refund(self, params: Json, account: str | None) -> Json:
        space = self._space(account)
        if params.get("payment_intent"):
            pi = self._get(space, "payment_intent", "payment_intent", params["payment_intent"])
            if not pi.get("latest_charge"):
                raise invalid("This PaymentIntent does not have a successful charge to refund.", "payment_intent")
            charge = space.objects[pi["latest_charge"]]
        elif params.get("charge"):
            charge = self._get(space, "charge", "charge", params["charge"])
        else:
            raise invalid("Missing required param: charge or payment_intent.")
        pending = sum(
            r["amount"]
            for r in space.objects.values()
            if r["object"] == "refund" and r["charge"] == charge["id"] and r["status"] == "pending"
        )
        left = charge["amount"] - charge["amount_refunded"] - pending
        amount = _int(params.get("amount", left), "amount")
        if left <= 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        if amount <= 0 or amount > left:
            raise invalid(
                f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on charge (${left / 100:.2f})",
                "amount",
            )
        refund: Json = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
            "status": "pending" if self.refunds_pending else "succeeded",
            "failure_reason": None,
            "created": int(time.time()),
        }
        space.objects[refund["id"]] = refund
        self._event("refund.created", refund, account)
        if refund["status"] == "succeeded":
            self._apply_refund(space, account, charge, refund)
        return self._public(refund)

    def _retrieve_refund(self, params: Json, account: str | None, refund_id: str) -> Json:
        return self._public(self._get(self._space(account), "refund", "refund", refund_id))

    def _retrieve_charge(self, params: Json, account: str | None, charge_id: str) -> Json:
        space = self._space(account)
        return self._expanded(space, self._get(space, "charge", "charge", charge_id), params)

    def _retrieve_dispute(self, params: Json, account: str | None, dispute_id: str) -> Json:
        space = self._space(account)
        return self._expanded(space, self._get(space, "dispute", "dispute", dispute_id), params)

    def _list_events(self, params: Json, account: str | None) -> Json:
        events = list(reversed(self._space(account).events))  # newest first
        types = params.get("types") or ([params["type"]] if params.get("type") else [])
        if isinstance(types, str):
            types = [types]
        if len(types) > 20:
            raise invalid("You may pass at most 20 types.", "types")
        if types:
            events = [e for e in events if any(_type_matches(t, e["type"]) for t in types)]
        if "delivery_success" in params:
            wanted = _bool(params["delivery_success"])
            events = [e for e in events if e["_delivered"] == wanted]
        created = params.get("created")
        if isinstance(created, dict) and created.get("gte"):
            events = [e for e in events if e["created"] >= int(created["gte"])]
        after = params.get("starting_after")
        if after:
            ids = [e["id"] for e in events]
            events = events[ids.index(after) + 1 :] if after in ids else []
        limit = max(1, min(100, _int(params.get("limit", 10), "limit")))
        page = events[:limit]
        return {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(events) > limit,
            "data": [self._public(e) for e in page],
        }

    def _retrieve_event(self, params: Json, account: str | None, event_id: str) -> Json:
        for event in self._space(account).events:
            if event["id"] == event_id:
                return self._public(event)
        raise missing("event", event_id)

    _ID = r"([A-Za-z0-9_-]+)"
    _routes: list[tuple[str, str, Callable[..., Json]]] = [
        ("GET", r"/v1/balance", _balance),
        ("POST", r"/v1/accounts", _create_account),
        ("GET", rf"/v1/accounts/{_ID}", _retrieve_account),
        ("POST", r"/v1/account_links", _account_link),
        ("POST", r"/v1/customers", _create_customer),
        ("GET", rf"/v1/customers/{_ID}", _retrieve_customer),
        ("POST", r"/v1/checkout/sessions", _create_session),
        ("GET", rf"/v1/checkout/sessions/{_ID}", _retrieve_session),
        ("POST", rf"/v1/checkout/sessions/{_ID}/expire", _expire_session),
        ("POST", r"/v1/payment_intents", _create_payment_intent),
        ("GET", rf"/v1/payment_intents/{_ID}", _retrieve_payment_intent),
        ("GET", rf"/v1/setup_intents/{_ID}", _retrieve_setup_intent),
        ("GET", rf"/v1/payment_methods/{_ID}", _retrieve_payment_method),
        ("POST", rf"/v1/payment_methods/{_ID}/detach", _detach_payment_method),
        ("POST", r"/v1/refunds", _create_refund),
        ("GET", rf"/v1/refunds/{_ID}", _retrieve_refund),
        ("GET", rf"/v1/charges/{_ID}", _retrieve_charge),
        ("GET", rf"/v1/disputes/{_ID}", _retrieve_dispute),
        ("GET", r"/v1/events", _list_events),
        ("GET", rf"/v1/events/{_ID}", _retrieve_event),
    ]


def _type_matches(pattern: str, type_: str) -> bool:
    return type_ == pattern or (pattern.endswith(".*") and type_.startswith(pattern[:-1]))


# --- pytest -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _fake_stripe_server() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(_fake_stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    """The fake, emptied for each test. Import both fixtures into a test module
    (`from tests.support.fake_stripe import fake_stripe, _fake_stripe_server`)."""
    _fake_stripe_server.reset()
    yield _fake_stripe_server
    _fake_stripe_server.heal()


def stripe_env(fake: FakeStripe, **overrides: str) -> dict[str, str]:
    """Settings overrides that point the app at the fake (fast timeouts for tests)."""
    return {
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
        "STRIPE_SECRET_KEY": "sk_test_fake_platform_key",
        **overrides,
    }
