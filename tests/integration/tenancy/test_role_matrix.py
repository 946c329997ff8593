"""Every route of the app, called as every role of one organisation.

What a role may do follows from the route's declared permission and the role's keys
(spotless.domain.identity.permissions): a role without the key gets 403 `forbidden`; a role
with it gets what `EXPECTED` says, 2xx unless noted (a cleaner meets 404 on a booking or series
that is not theirs, office roles meet 403 `no-worker-profile` in the field app ...). Routes are
discovered from the app: a new route fails `test_every_route_is_classified` until it is added to
`EXPECTED`, and its cases then run as every role.

The second half checks what the narrowed reads answer: a cleaner's series and bookings are their
own, and no answer a cleaner can get contains a colleague's phone, email, hourly rate or the
reason of their time off."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.identity.permissions import ROLES, permissions_for
from tests.conftest import make_settings
from tests.integration.tenancy.test_cross_org import _body
from tests.support.factories import api_worker, api_world, next_weekday
from tests.support.identity import (
    DEFAULT_PASSWORD,
    Member,
    add_member,
    deliver_invitation,
    invite,
    signup,
    token_in,
    unique_email,
)
from tests.support.tenancy import create, load_factories

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
NO_PROFILE = (403, "/problems/no-worker-profile")
ANY_BUT_AUTH = "not 401/403"  # public routes: whoever calls, the answer is not an authorisation one


@dataclass(frozen=True)
class Expect:
    """Statuses for the roles the permission admits: `default` for all of them (None: any 2xx),
    `by_role` where one role differs. A status may be (status, problem type)."""

    default: Any = None
    by_role: dict[str, Any] = field(default_factory=dict)

    def for_role(self, role: str) -> Any:
        return self.by_role.get(role, self.default)


OK = Expect()
# A cleaner (role worker) reaches the route but only for their own assignments: the factory's
# booking or series is not theirs, so 404 (existence is not leaked).
OWN = Expect(by_role={"worker": 404})
PUBLIC = Expect(default=ANY_BUT_AUTH)

EXPECTED: dict[tuple[str, str], Expect] = {
    # operational and public
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/v1/status"): PUBLIC,
    ("POST", "/v1/auth/signup"): PUBLIC,
    ("POST", "/v1/auth/login"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,
    ("POST", "/v1/auth/password-reset/request"): PUBLIC,
    ("POST", "/v1/auth/password-reset/confirm"): PUBLIC,
    # identity (core.view, settings.manage, users.manage, audit.view)
    ("POST", "/v1/auth/change-password"): OK,
    ("POST", "/v1/auth/logout"): OK,
    ("GET", "/v1/auth/me"): OK,
    ("GET", "/v1/org"): OK,
    ("PATCH", "/v1/org"): OK,
    ("GET", "/v1/iam/users"): OK,
    ("POST", "/v1/iam/users"): OK,
    ("GET", "/v1/iam/users/{user_id:uuid}"): OK,
    ("POST", "/v1/iam/users/{user_id:uuid}/activate"): OK,
    ("POST", "/v1/iam/users/{user_id:uuid}/deactivate"): OK,
    ("POST", "/v1/iam/users/{user_id:uuid}/role"): OK,
    ("POST", "/v1/iam/users/{user_id:uuid}/logout"): OK,
    ("POST", "/v1/iam/users/{user_id:uuid}/reset-temp-password"): OK,
    ("GET", "/v1/admin/audit"): OK,
    # invitations: the organisation's side (users.manage). Each role's revoke or re-send acts on an
    # invitation of its own (calls other than GET get fresh ids), so every admitted role meets a pending one.
    ("GET", "/v1/iam/invitations"): OK,
    ("POST", "/v1/iam/invitations"): OK,
    ("GET", "/v1/iam/invitations/{invitation_id:uuid}"): OK,
    ("POST", "/v1/iam/invitations/{invitation_id:uuid}/revoke"): OK,
    ("POST", "/v1/iam/invitations/{invitation_id:uuid}/resend"): OK,
    # invitations: the invitee's side (core.view, every role), only ever the caller's own account's.
    ("GET", "/v1/me/invitations"): OK,
    # The real link of an invitation addressed to someone else: the link alone joins nobody, whatever the role.
    ("POST", "/v1/me/invitations/accept"): Expect(default=(400, "/problems/invalid-invitation")),
    # An invitation of the caller's own organisation, addressed to someone else: nobody declines it for them.
    ("POST", "/v1/me/invitations/decline"): Expect(default=(404, "/problems/not-found")),
    # clients (contacts.view / contacts.edit: no cleaner)
    ("GET", "/v1/clients"): OK,
    ("POST", "/v1/clients"): OK,
    ("GET", "/v1/clients/{client_id:uuid}"): OK,
    ("PATCH", "/v1/clients/{client_id:uuid}"): OK,
    ("DELETE", "/v1/clients/{client_id:uuid}"): OK,
    ("GET", "/v1/clients/{client_id:uuid}/addresses"): OK,
    ("POST", "/v1/clients/{client_id:uuid}/addresses"): OK,
    ("GET", "/v1/clients/{client_id:uuid}/addresses/{address_id:uuid}"): OK,
    ("PATCH", "/v1/clients/{client_id:uuid}/addresses/{address_id:uuid}"): OK,
    ("DELETE", "/v1/clients/{client_id:uuid}/addresses/{address_id:uuid}"): OK,
    # Stripe (finance.view / finance.manage). No Stripe in this suite (a closed port): connecting
    # answers 503 payments-unavailable, fast; the factories' organisation has no connected account,
    # so a card payment or card setup is a 409 before any call to Stripe.
    ("POST", "/v1/billing/stripe/connect"): Expect(default=(503, "/problems/payments-unavailable")),
    ("GET", "/v1/billing/stripe/account"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/checkout"): Expect(default=409),
    ("POST", "/v1/clients/{client_id:uuid}/card-setup"): Expect(default=(409, "/problems/payments-not-enabled")),
    ("GET", "/v1/clients/{client_id:uuid}/payment-methods"): OK,
    ("DELETE", "/v1/clients/{client_id:uuid}/payment-methods/{method_id:uuid}"): OK,
    # workforce (reads: everyone, with contact/pay details narrowed; writes: users.manage)
    ("GET", "/v1/workers"): OK,
    ("POST", "/v1/workers"): OK,
    ("GET", "/v1/workers/{worker_id:uuid}"): OK,
    ("PATCH", "/v1/workers/{worker_id:uuid}"): OK,
    ("DELETE", "/v1/workers/{worker_id:uuid}"): OK,
    ("GET", "/v1/workers/{worker_id:uuid}/hours"): OK,
    ("PUT", "/v1/workers/{worker_id:uuid}/hours"): OK,
    ("GET", "/v1/workers/{worker_id:uuid}/time-off"): OK,
    ("POST", "/v1/workers/{worker_id:uuid}/time-off"): OK,
    ("DELETE", "/v1/workers/{worker_id:uuid}/time-off/{time_off_id:uuid}"): OK,
    ("GET", "/v1/teams"): OK,
    ("POST", "/v1/teams"): OK,
    ("GET", "/v1/teams/{team_id:uuid}"): OK,
    ("PATCH", "/v1/teams/{team_id:uuid}"): OK,
    ("DELETE", "/v1/teams/{team_id:uuid}"): OK,
    ("POST", "/v1/teams/{team_id:uuid}/members"): OK,
    ("DELETE", "/v1/teams/{team_id:uuid}/members/{worker_id:uuid}"): OK,
    # catalogue (reads: everyone; writes: pricing.manage)
    ("GET", "/v1/services"): OK,
    ("POST", "/v1/services"): OK,
    ("GET", "/v1/services/{service_id:uuid}"): OK,
    ("PATCH", "/v1/services/{service_id:uuid}"): OK,
    ("DELETE", "/v1/services/{service_id:uuid}"): OK,
    ("GET", "/v1/services/{service_id:uuid}/addons"): OK,
    ("POST", "/v1/services/{service_id:uuid}/addons"): OK,
    ("PATCH", "/v1/services/{service_id:uuid}/addons/{addon_id:uuid}"): OK,
    ("DELETE", "/v1/services/{service_id:uuid}/addons/{addon_id:uuid}"): OK,
    ("GET", "/v1/addons"): OK,
    ("POST", "/v1/addons"): OK,
    ("PATCH", "/v1/addons/{addon_id:uuid}"): OK,
    ("DELETE", "/v1/addons/{addon_id:uuid}"): OK,
    ("GET", "/v1/frequency-discounts"): OK,
    ("PUT", "/v1/frequency-discounts"): OK,
    ("POST", "/v1/quotes"): OK,
    # bookings
    ("GET", "/v1/bookings"): OK,
    ("POST", "/v1/bookings"): OK,
    ("GET", "/v1/bookings/{booking_id:uuid}"): OWN,
    ("POST", "/v1/bookings/{booking_id:uuid}/confirm"): OK,
    ("POST", "/v1/bookings/{booking_id:uuid}/reschedule"): OK,
    ("POST", "/v1/bookings/{booking_id:uuid}/assign"): OK,
    ("POST", "/v1/bookings/{booking_id:uuid}/unassign"): OK,
    ("POST", "/v1/bookings/{booking_id:uuid}/cancel"): OK,
    # The factory's booking is pending: completing or marking it a no-show is a 409 for the office.
    ("POST", "/v1/bookings/{booking_id:uuid}/complete"): Expect(default=409, by_role={"worker": 404}),
    ("POST", "/v1/bookings/{booking_id:uuid}/no-show"): Expect(default=409, by_role={"worker": 404}),
    ("GET", "/v1/availability"): OK,
    ("GET", "/v1/scheduling/settings"): OK,
    ("PUT", "/v1/scheduling/settings"): OK,
    # recurring series: a cleaner sees the series they are on
    ("GET", "/v1/series"): OK,
    ("POST", "/v1/series"): OK,
    ("GET", "/v1/series/{series_id:uuid}"): OWN,
    ("GET", "/v1/series/{series_id:uuid}/conflicts"): OWN,
    ("PATCH", "/v1/series/{series_id:uuid}/occurrences/{occurrence_date:date}"): OK,
    ("POST", "/v1/series/{series_id:uuid}/occurrences/{occurrence_date:date}/cancel"): OK,
    ("POST", "/v1/series/{series_id:uuid}/holds"): OK,
    ("GET", "/v1/series/{series_id:uuid}/holds"): OWN,
    ("POST", "/v1/series/{series_id:uuid}/holds/{hold_id:uuid}/lift"): OK,
    # field app: the caller's own jobs, so only a member with a worker profile gets past 403
    ("GET", "/v1/worker/jobs"): Expect(default=NO_PROFILE, by_role={"worker": None}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/start"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/travel"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/pause"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/resume"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/finish"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    # billing: the invoice factory makes a draft, which is issued, edited, voided or deleted, but
    # neither written off, credited nor paid (409 for the roles admitted)
    ("GET", "/v1/billing/settings"): OK,
    ("PUT", "/v1/billing/settings"): OK,
    # notifications: settings and digests (settings.manage)
    ("GET", "/v1/notifications/settings"): OK,
    ("PUT", "/v1/notifications/settings"): OK,
    ("GET", "/v1/notifications/digests"): OK,
    ("POST", "/v1/notifications/digests"): OK,
    ("PUT", "/v1/notifications/digests/{digest_key:str}"): OK,
    ("DELETE", "/v1/notifications/digests/{digest_key:str}"): OK,
    ("GET", "/v1/invoices"): OK,
    ("POST", "/v1/invoices"): OK,
    ("GET", "/v1/invoices/{invoice_id:uuid}"): OK,
    ("PATCH", "/v1/invoices/{invoice_id:uuid}"): OK,
    ("DELETE", "/v1/invoices/{invoice_id:uuid}"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/issue"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/void"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/uncollectible"): Expect(default=(409, "/problems/invoice-not-open")),
    ("POST", "/v1/invoices/{invoice_id:uuid}/credit-notes"): Expect(default=(409, "/problems/invoice-not-issued")),
    ("POST", "/v1/invoices/{invoice_id:uuid}/payments"): Expect(default=(409, "/problems/invoice-not-payable")),
    ("POST", "/v1/invoices/{invoice_id:uuid}/apply-credit"): Expect(default=(409, "/problems/invoice-not-payable")),
    # billing: the chase of an unpaid invoice (finance.view to see it, finance.manage to stop it);
    # (the invoice factory makes a draft, which nobody chases: 409 for the roles admitted)
    ("GET", "/v1/invoices/{invoice_id:uuid}/followup"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/followup/stop"): Expect(default=(409, "/problems/followup-not-active")),
    # invoices as documents and their public links (finance.view / finance.manage)
    ("GET", "/v1/invoices/{invoice_id:uuid}/pdf"): OK,
    # 201 for an issued invoice; 409 invoice-not-linkable when the invoice factory makes a draft
    ("POST", "/v1/invoices/{invoice_id:uuid}/links"): Expect(default=ANY_BUT_AUTH),
    ("GET", "/v1/invoices/{invoice_id:uuid}/links"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/links/{link_id:uuid}/revoke"): OK,
    # an invoice's public link: the token is the credential, whoever else calls
    ("GET", "/v1/pay/{token:str}"): PUBLIC,
    ("GET", "/v1/pay/{token:str}/pdf"): PUBLIC,
    # (409 payments-not-enabled: the matrix organisation has no Stripe account)
    ("POST", "/v1/pay/{token:str}/checkout"): PUBLIC,
    ("POST", "/v1/pay/{token:str}/card-setup"): PUBLIC,
    # billing: Stripe's webhook (signed, not authenticated), refunds and disputes (finance.view / finance.manage).
    # The factory's invoice is issued but unpaid: nothing can be refunded on it yet.
    ("POST", "/v1/payments/stripe/webhook"): PUBLIC,
    ("GET", "/v1/invoices/{invoice_id:uuid}/refunds"): OK,
    ("POST", "/v1/invoices/{invoice_id:uuid}/refunds"): Expect(default=(409, "/problems/refund-exceeds-paid")),
    ("GET", "/v1/disputes"): OK,
    # messaging: the organisation's wording, layout and quiet hours (settings.manage); preferences
    # and consent (contacts.view / contacts.edit for clients, workers.contact.view / users.manage
    # for workers); the message log (contacts.view); one-click unsubscribe and Twilio's webhook
    # (public: a token, a signature)
    ("GET", "/v1/messaging/kinds"): OK,
    ("GET", "/v1/messaging/templates/{kind:str}"): OK,
    ("PUT", "/v1/messaging/templates/{kind:str}"): OK,
    ("DELETE", "/v1/messaging/templates/{kind:str}"): OK,
    ("GET", "/v1/messaging/kinds/{kind:str}/preview"): OK,
    ("GET", "/v1/messaging/settings"): OK,
    ("PUT", "/v1/messaging/settings"): OK,
    ("GET", "/v1/clients/{client_id:uuid}/message-preferences"): OK,
    ("PUT", "/v1/clients/{client_id:uuid}/message-preferences/{kind:str}"): OK,
    ("PUT", "/v1/clients/{client_id:uuid}/sms-consent"): OK,
    ("GET", "/v1/clients/{client_id:uuid}/messages"): OK,
    ("GET", "/v1/workers/{worker_id:uuid}/message-preferences"): OK,
    ("PUT", "/v1/workers/{worker_id:uuid}/message-preferences/{kind:str}"): OK,
    ("PUT", "/v1/workers/{worker_id:uuid}/sms-consent"): OK,
    ("GET", "/v1/bookings/{booking_id:uuid}/messages"): OK,
    ("POST", "/v1/messaging/unsubscribe/{token:str}"): PUBLIC,
    ("POST", "/v1/messaging/twilio/inbound"): PUBLIC,
    ("POST", "/v1/messaging/twilio/status/{org_id:uuid}/{delivery_id:uuid}"): PUBLIC,
    ("POST", "/v1/messaging/sendgrid/events"): PUBLIC,
    # exports (exports.run; the tax export finance.view), dead jobs (jobs.manage: admins), and the
    # local storage's signed downloads (public: without a valid signature, 400/403, never a file).
    ("POST", "/v1/exports"): OK,
    ("GET", "/v1/exports"): OK,
    ("GET", "/v1/exports/{export_id:uuid}"): OK,
    ("GET", "/v1/admin/finance/taxes/export"): Expect(default=202),
    ("GET", "/v1/admin/queue/dlq"): OK,
    ("POST", "/v1/admin/queue/dlq/replay"): OK,
    ("GET", "/v1/storage/{key:path}"): PUBLIC,
    # outgoing webhooks (integrations.manage: owner and admin)
    ("GET", "/v1/webhooks/event-types"): OK,
    ("GET", "/v1/webhooks/endpoints"): OK,
    ("POST", "/v1/webhooks/endpoints"): OK,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id:uuid}"): OK,
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id:uuid}"): OK,
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id:uuid}"): OK,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id:uuid}/rotate-secret"): OK,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id:uuid}/messages"): OK,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id:uuid}/replay"): OK,
    ("GET", "/v1/webhooks/messages/{message_id:uuid}"): OK,
    ("GET", "/v1/webhooks/messages/{message_id:uuid}/attempts"): OK,
    ("POST", "/v1/webhooks/messages/{message_id:uuid}/replay"): OK,
    ("POST", "/v1/storage/uploads"): PUBLIC,
    # integrations (core.view; organisation-wide connections integrations.manage). This suite's server
    # has no provider set up: starting or finishing a connection is a 409 for every role, and there is
    # no connection of the caller's own to disconnect.
    ("GET", "/v1/integrations"): OK,
    ("POST", "/v1/integrations/{provider_name:str}/connect"): Expect(
        default=(409, "/problems/integration-not-configured")
    ),
    ("POST", "/v1/integrations/{provider_name:str}/callback"): Expect(
        default=(409, "/problems/integration-not-configured")
    ),
    ("DELETE", "/v1/integrations/{provider_name:str}"): Expect(default=(404, "/problems/not-found")),
    # Google Calendar: watch notifications are Google's (public; a channel we do not keep gets a 200 no-op);
    # conflicts with synced busy time are for dispatch (bookings.assign)
    ("POST", "/v1/integrations/google/notifications"): PUBLIC,
    ("GET", "/v1/integrations/google/conflicts"): OK,
    # QuickBooks reconciliation (integrations.manage: owner and admin). The factory's item is a customer
    # waiting for link-or-rename: resolving it is accepted; retrying it is not what it needs (409).
    ("GET", "/v1/quickbooks/reconciliation"): OK,
    ("POST", "/v1/quickbooks/items/{qbo_item_id:uuid}/retry"): Expect(
        default=(409, "/problems/qbo-item-not-retryable")
    ),
    ("POST", "/v1/quickbooks/items/{qbo_item_id:uuid}/resolve"): OK,
    # field evidence: checklist templates (core.view / pricing.manage), a job's evidence (bookings.view,
    # a cleaner only their own), the field app's checklist and photos (bookings.status, own jobs only:
    # the factory's booking is not the matrix cleaner's)
    ("GET", "/v1/services/{service_id:uuid}/checklist"): OK,
    ("PUT", "/v1/services/{service_id:uuid}/checklist"): OK,
    ("GET", "/v1/bookings/{booking_id:uuid}/evidence"): OWN,
    ("GET", "/v1/worker/jobs/{booking_id:uuid}/checklist"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("PUT", "/v1/worker/jobs/{booking_id:uuid}/checklist/{item_id:uuid}"): Expect(
        default=NO_PROFILE, by_role={"worker": 404}
    ),
    ("GET", "/v1/worker/jobs/{booking_id:uuid}/photos"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/photos/uploads"): Expect(default=NO_PROFILE, by_role={"worker": 404}),
    ("POST", "/v1/worker/jobs/{booking_id:uuid}/photos/{photo_id:uuid}/confirm"): Expect(
        default=NO_PROFILE, by_role={"worker": 404}
    ),
    # retention and data rights (privacy.manage: owners and admins). A fresh client has no open
    # work, so its erasure succeeds.
    ("GET", "/v1/admin/retention"): OK,
    ("PUT", "/v1/admin/retention"): OK,
    ("POST", "/v1/admin/retention/cleanup"): OK,
    ("POST", "/v1/clients/{client_id:uuid}/erasure"): OK,
    ("GET", "/v1/clients/{client_id:uuid}/erasure"): OK,
}


def _routes() -> list[tuple[str, str, HTTPRouteHandler]]:
    app = create_app(make_settings())
    found = []
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler))
    return found


ROUTES = _routes()


# --- requests the schema cannot generate (a valid body, query parameters) ----------------------


@dataclass
class Call:
    """Who calls, as which member of the organisation, and what was set up for them."""

    client: Any
    owner: Member
    caller: Member
    ids: dict[str, str]


Prepare = Callable[[Call], Awaitable[dict[str, Any]]]


async def _booking_body(call: Call) -> dict[str, Any]:
    world = await api_world(call.client, call.owner, workers=1, hours=None)
    return {"json": world.booking(next_weekday(2), 10, override={"reason": "matrix: no hours set"})}


async def _series_body(call: Call) -> dict[str, Any]:
    world = await api_world(call.client, call.owner, workers=0)
    body = {
        "client_id": str(world.client_id),
        "address_id": str(world.address_id),
        "service_id": str(world.service_id),
        "frequency": "weekly",
        "start_date": next_weekday(2).isoformat(),
        "start_time": "09:00",
        "count": 2,
    }
    return {"json": body}


async def _invoice_body(call: Call) -> dict[str, Any]:
    client_id = await create("client_id", call.client, call.owner, {})
    return {"json": {"client_id": client_id, "lines": [{"description": "Matrix clean", "unit_cents": 5000}]}}


async def _service_id(call: Call) -> str:
    return await create("service_id", call.client, call.owner, {})


async def _quote(call: Call) -> dict[str, Any]:
    return {"json": {"service_id": await _service_id(call)}}


async def _availability(call: Call) -> dict[str, Any]:
    day = next_weekday(2)
    params = {"service_id": await _service_id(call), "date_from": day.isoformat(), "date_to": day.isoformat()}
    return {"params": params}


async def _someone_elses_invitation_link(call: Call) -> dict[str, Any]:
    """The token from the email of an invitation to another person's existing account."""
    outsider = await signup(call.client, name="Outsider Org")
    invitation = await invite(call.client, call.owner, outsider.email)
    message = await deliver_invitation(call.owner.org_id, invitation["id"])
    assert message is not None and message.to == outsider.email
    return {"json": {"token": token_in(message.body)}}


async def _someone_elses_invitation(call: Call) -> dict[str, Any]:
    return {"json": {"invitation_id": await create("invitation_id", call.client, call.owner, {})}}


async def _tax_period(call: Call) -> dict[str, Any]:
    return {"params": {"from": "2026-01-01", "to": "2026-03-31"}}


def _json(make: Callable[[Call], dict[str, Any]]) -> Prepare:
    async def prepare(call: Call) -> dict[str, Any]:
        return {"json": make(call)}

    return prepare


def _unique() -> str:
    return uuid.uuid4().hex[:8]


REQUESTS: dict[tuple[str, str], Prepare] = {
    ("POST", "/v1/auth/signup"): _json(
        lambda c: {"org_name": "Matrix Org", "email": unique_email("matrix"), "password": DEFAULT_PASSWORD}
    ),
    ("POST", "/v1/auth/login"): _json(lambda c: {"email": c.caller.email, "password": c.caller.password}),
    ("POST", "/v1/auth/refresh"): _json(lambda c: {"refresh_token": c.caller.refresh_token}),
    ("POST", "/v1/auth/password-reset/request"): _json(lambda c: {"email": c.caller.email}),
    ("POST", "/v1/auth/password-reset/confirm"): _json(
        lambda c: {"token": "not-a-real-token-" + _unique(), "new_password": "another-horse-battery-7"}
    ),
    ("POST", "/v1/auth/change-password"): _json(
        lambda c: {"current_password": c.caller.password, "new_password": "another-horse-battery-7"}
    ),
    ("PATCH", "/v1/org"): _json(lambda c: {"name": "Renamed Org"}),
    ("POST", "/v1/iam/users"): _json(lambda c: {"email": unique_email("matrix"), "role": "viewer"}),
    ("POST", "/v1/iam/invitations"): _json(lambda c: {"email": unique_email("matrix"), "role": "viewer"}),
    ("POST", "/v1/me/invitations/accept"): _someone_elses_invitation_link,
    ("POST", "/v1/me/invitations/decline"): _someone_elses_invitation,
    ("POST", "/v1/clients"): _json(lambda c: {"name": "Matrix Client"}),
    ("POST", "/v1/workers"): _json(lambda c: {"name": "Matrix Worker"}),
    ("POST", "/v1/teams"): _json(lambda c: {"name": f"Matrix Team {_unique()}"}),
    ("PATCH", "/v1/teams/{team_id:uuid}"): _json(lambda c: {"name": f"Renamed Team {_unique()}"}),
    ("POST", "/v1/services"): _json(
        lambda c: {"name": f"Matrix Service {_unique()}", "base_price_cents": 1000, "base_minutes": 60}
    ),
    ("PATCH", "/v1/services/{service_id:uuid}"): _json(lambda c: {"name": f"Renamed Service {_unique()}"}),
    ("POST", "/v1/addons"): _json(lambda c: {"name": f"Matrix Add-on {_unique()}", "price_cents": 500}),
    ("POST", "/v1/services/{service_id:uuid}/addons"): _json(
        lambda c: {"name": f"Matrix Add-on {_unique()}", "price_cents": 500}
    ),
    ("PUT", "/v1/frequency-discounts"): _json(lambda c: {"weekly": 500}),
    ("POST", "/v1/quotes"): _quote,
    ("POST", "/v1/bookings"): _booking_body,
    ("POST", "/v1/bookings/{booking_id:uuid}/reschedule"): _json(
        lambda c: {
            "starts_at": (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0).isoformat(),
            "override": {"reason": "matrix"},
        }
    ),
    ("POST", "/v1/bookings/{booking_id:uuid}/cancel"): _json(lambda c: {"reason": "matrix"}),
    ("GET", "/v1/availability"): _availability,
    ("PUT", "/v1/scheduling/settings"): _json(lambda c: {"travel_buffer_minutes": 15}),
    ("PUT", "/v1/billing/settings"): _json(lambda c: {"payment_terms_days": 30}),
    ("PUT", "/v1/notifications/settings"): _json(lambda c: {"agenda_at": "19:00"}),
    ("PUT", "/v1/notifications/digests/{digest_key:str}"): _json(lambda c: {"schedule": "weekly"}),
    ("POST", "/v1/notifications/digests"): _json(lambda c: {"digest_key": f"matrix-{_unique()}"}),
    ("PUT", "/v1/messaging/settings"): _json(lambda c: {"reply_to": "office@matrix.example"}),
    ("PUT", "/v1/messaging/templates/{kind:str}"): _json(lambda c: {"subject": "Hello {{ org.name }}"}),
    ("PUT", "/v1/clients/{client_id:uuid}/message-preferences/{kind:str}"): _json(lambda c: {"channel": "none"}),
    ("PUT", "/v1/workers/{worker_id:uuid}/message-preferences/{kind:str}"): _json(lambda c: {"channel": "none"}),
    ("PUT", "/v1/clients/{client_id:uuid}/sms-consent"): _json(lambda c: {"consented": False}),
    ("PUT", "/v1/workers/{worker_id:uuid}/sms-consent"): _json(lambda c: {"consented": False}),
    ("POST", "/v1/invoices"): _invoice_body,
    ("POST", "/v1/exports"): _json(lambda c: {"kind": "clients"}),
    ("GET", "/v1/admin/finance/taxes/export"): _tax_period,
    ("POST", "/v1/webhooks/endpoints"): _json(
        lambda c: {"url": "https://93.184.215.14/matrix", "event_types": ["booking.created"]}
    ),
    ("POST", "/v1/series"): _series_body,
    ("POST", "/v1/series/{series_id:uuid}/occurrences/{occurrence_date:date}/cancel"): _json(
        lambda c: {"scope": "this", "reason": "matrix"}
    ),
    ("PATCH", "/v1/series/{series_id:uuid}/occurrences/{occurrence_date:date}"): _json(
        lambda c: {"scope": "this", "notes": "matrix"}
    ),
}


# --- the organisation ---------------------------------------------------------------------------


# The route cases share one organisation (six sign-ups per route would triple the run time), so
# the module keeps its data until its last test (see `clean_slate` below). Routes that end or
# change the caller's own session get an organisation of their own.
_SHARED: dict[str, Any] = {}
OWN_ORGANISATION = {
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/change-password"),
    ("POST", "/v1/auth/refresh"),
}


@pytest.fixture(autouse=True)
async def clean_slate() -> Any:
    """Replaces the suite's per-test truncation for this module (see _SHARED)."""
    yield


@pytest.fixture(scope="module", autouse=True)
async def _clean_after_module(owner_engine: AsyncEngine, _tables: list[str], settings: Any) -> Any:
    yield
    _SHARED.clear()
    if _tables:
        async with owner_engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {', '.join(_tables)} RESTART IDENTITY CASCADE")
    redis = Redis.from_url(settings.redis.url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def _shared_organisation(client: Any) -> tuple[Member, dict[str, Member], str]:
    found = _SHARED.get("org")
    # Rebuilt if another module's clean-up ran in between (tests run in another order).
    if found is None or (await client.get("/v1/auth/me", headers=found[0].headers)).status_code != 200:
        _SHARED["org"] = found = await _organisation(client)
    return found


async def _organisation(client: Any) -> tuple[Member, dict[str, Member], str]:
    """One member per role; the cleaner (role worker) has a worker profile, as in the field."""
    owner = await signup(client, name="Matrix Org")
    members = {"owner": owner}
    for role in ROLES:
        if role != "owner":
            members[role] = await add_member(client, owner, role)
    cleaner_profile = await api_worker(client, owner, name="Matrix Cleaner", user_id=members["worker"].user_id)
    return owner, members, str(cleaner_profile)


def _matches(response: Any, expected: Any) -> bool:
    if expected is None:
        return 200 <= response.status_code < 300
    if expected == ANY_BUT_AUTH:
        return response.status_code not in (401, 403) and response.status_code < 500
    if isinstance(expected, tuple):
        status, problem = expected
        return response.status_code == status and response.json().get("type") == problem
    return bool(response.status_code == expected)


def _classified(method: str, path: str) -> Expect:
    expect = EXPECTED.get((method, path))
    assert expect is not None, (
        f"{method} {path} is not in tests/integration/tenancy/test_role_matrix.py EXPECTED: say what each role "
        "admitted by its permission should get (OK = 2xx; OWN = a cleaner gets 404 for what is not theirs; ...)"
    )
    return expect


def test_every_route_is_classified():
    routes = {(m, p) for m, p, _ in ROUTES}
    unclassified = sorted(routes - set(EXPECTED))
    assert not unclassified, f"routes missing from EXPECTED (classify them): {unclassified}"
    stale = sorted(set(EXPECTED) - routes)
    assert not stale, f"EXPECTED names routes that no longer exist: {stale}"


@pytest.mark.parametrize(("method", "path", "handler"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_each_role_gets_what_its_permissions_allow(client, method: str, path: str, handler: HTTPRouteHandler):
    expect = _classified(method, path)
    load_factories()
    permission = handler.opt.get("permission")
    public = bool(handler.opt.get("public"))
    assert public or permission, f"{method} {path} declares neither a permission nor public"
    own = (method, path) in OWN_ORGANISATION
    owner, members, _profile = await (_organisation(client) if own else _shared_organisation(client))
    params = [name for name, _ in _PARAM.findall(path)]
    failures = []
    shared_ids: dict[str, str] | None = None
    # Lowest rank first, so a route that ends the caller's session (logout) is met last by the owner.
    for role in reversed(ROLES):
        caller = members[role]
        if method == "GET" and shared_ids is not None:
            ids = shared_ids  # reads change nothing: one set of resources serves every role
        else:
            ids = {}
            for param in params:
                ids[param] = await create(param, client, owner, ids)
            shared_ids = ids
        call = Call(client=client, owner=owner, caller=caller, ids=ids)
        prepare = REQUESTS.get((method, path))
        if prepare is not None:
            kwargs = await prepare(call)
        else:
            body = _body(method, path, handler, ids)
            kwargs = {"json": body} if body is not None else {}
        url = _PARAM.sub(lambda m, ids=ids: ids[m.group(1)], path)
        response = await client.request(method, url, headers=caller.headers, **kwargs)
        allowed = public or permission in permissions_for(role)
        if not allowed:
            ok = response.status_code == 403 and response.json().get("type") == "/problems/forbidden"
            wanted: Any = "403 forbidden"
        else:
            wanted = expect.for_role(role)
            ok = _matches(response, wanted)
        if not ok:
            failures.append(
                f"{role} ({'admitted' if allowed else 'lacks ' + str(permission)}): "
                f"{response.status_code}, expected {wanted or '2xx'}: {response.text[:300]}"
            )
    assert not failures, f"{method} {path}\n" + "\n".join(failures)


# --- what the narrowed reads answer ------------------------------------------------------------


async def _series(client: Any, owner: Member, worker_ids: list[str]) -> str:
    world = await api_world(client, owner, workers=0)
    body = {
        "client_id": str(world.client_id),
        "address_id": str(world.address_id),
        "service_id": str(world.service_id),
        "frequency": "weekly",
        "start_date": next_weekday(2).isoformat(),
        "start_time": "09:00",
        "count": 2,
        "worker_ids": worker_ids,
    }
    response = await client.post("/v1/series", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["series"]["id"])


async def test_a_cleaner_sees_only_the_series_they_are_on(client) -> None:
    owner, members, mine = await _organisation(client)
    colleague = str(await api_worker(client, owner, name="Colleague"))
    own_series = await _series(client, owner, [mine])
    shared_series = await _series(client, owner, [colleague, mine])
    other_series = await _series(client, owner, [colleague])
    unassigned = await _series(client, owner, [])
    cleaner = members["worker"].headers

    listed = (await client.get("/v1/series", headers=cleaner)).json()
    assert {s["id"] for s in listed["items"]} == {own_series, shared_series}
    assert listed["total"] == 2
    for series_id in (own_series, shared_series):
        assert (await client.get(f"/v1/series/{series_id}", headers=cleaner)).status_code == 200
        assert (await client.get(f"/v1/series/{series_id}/conflicts", headers=cleaner)).status_code == 200
    for series_id in (other_series, unassigned):
        assert (await client.get(f"/v1/series/{series_id}", headers=cleaner)).status_code == 404
        assert (await client.get(f"/v1/series/{series_id}/conflicts", headers=cleaner)).status_code == 404
    # The office sees them all.
    for role in ("owner", "dispatcher", "finance", "viewer"):
        seen = (await client.get("/v1/series", headers=members[role].headers)).json()
        assert seen["total"] == 4, role


async def test_a_cleaner_without_a_worker_profile_sees_no_series(client) -> None:
    owner = await signup(client)
    unlinked = await add_member(client, owner, "worker")
    await _series(client, owner, [])
    listed = (await client.get("/v1/series", headers=unlinked.headers)).json()
    assert listed["items"] == [] and listed["total"] == 0


async def test_a_cleaner_sees_only_their_own_bookings_and_jobs(client) -> None:
    owner, members, mine = await _organisation(client)
    world = await api_world(client, owner, workers=1, hours=None)
    colleague = str(world.worker_ids[0])
    day = next_weekday(2)
    made = {}
    for who, worker in (("mine", mine), ("theirs", colleague)):
        body = world.booking(day, 10 if who == "mine" else 13, workers=[worker], override={"reason": "matrix"})
        response = await client.post("/v1/bookings", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        made[who] = response.json()["id"]
    cleaner = members["worker"].headers
    listed = (await client.get("/v1/bookings", headers=cleaner)).json()
    assert [b["id"] for b in listed["items"]] == [made["mine"]]
    other = await client.get("/v1/bookings", params={"worker_id": colleague}, headers=cleaner)
    assert other.json()["items"] == []
    assert (await client.get(f"/v1/bookings/{made['theirs']}", headers=cleaner)).status_code == 404
    assert (await client.get(f"/v1/bookings/{made['mine']}", headers=cleaner)).status_code == 200
    started = await client.post(f"/v1/worker/jobs/{made['theirs']}/start", headers=cleaner)
    assert started.status_code == 404
    jobs = (await client.get("/v1/worker/jobs", params={"date": day.isoformat()}, headers=cleaner)).json()
    assert [j["booking_id"] for j in jobs] == [made["mine"]]


# The colleague's details, distinctive enough to be found in any answer.
SECRETS = {
    "phone": "+1 416 555 0177",
    "email": "cole.private@example.com",
    "hourly_rate_cents": 31337,
    "reason": "oncology appointment",
}


async def test_no_answer_a_cleaner_can_get_holds_a_colleagues_private_details(client) -> None:
    """Every GET route a cleaner may call, with the colleague's ids where a route takes a worker."""
    load_factories()
    owner, members, _mine = await _organisation(client)
    created = await client.post(
        "/v1/workers",
        json={
            "name": "Cole Colleague",
            "phone": SECRETS["phone"],
            "email": SECRETS["email"],
            "hourly_rate_cents": SECRETS["hourly_rate_cents"],
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    colleague = created.json()["id"]
    off = await client.post(
        f"/v1/workers/{colleague}/time-off",
        json={"starts_at": "2030-05-01T09:00:00Z", "ends_at": "2030-05-01T17:00:00Z", "reason": SECRETS["reason"]},
        headers=owner.headers,
    )
    assert off.status_code == 201, off.text
    cleaner = members["worker"]
    reachable = [
        (p, h)
        for m, p, h in ROUTES
        if m == "GET" and h.opt.get("permission") in permissions_for("worker") and p != "/v1/auth/me"
    ]
    assert any("/workers" in p for p, _ in reachable)
    checked = 0
    for path, _handler in reachable:
        ids: dict[str, str] = {}
        for param, _ in _PARAM.findall(path):
            ids[param] = colleague if param == "worker_id" else await create(param, client, owner, ids)
        prepare = REQUESTS.get(("GET", path))
        kwargs = await prepare(Call(client, owner, cleaner, ids)) if prepare else {}
        url = _PARAM.sub(lambda m, ids=ids: ids[m.group(1)], path)
        response = await client.get(url, headers=cleaner.headers, **kwargs)
        text = response.text
        for name, value in SECRETS.items():
            assert str(value) not in text, f"GET {path} shows the colleague's {name} to a cleaner: {text[:300]}"
        checked += response.status_code == 200
    assert checked >= 8
    # The owner does see them (the details exist and the check above could have found them).
    full = (await client.get(f"/v1/workers/{colleague}", headers=owner.headers)).text
    assert SECRETS["phone"] in full and str(SECRETS["hourly_rate_cents"]) in full
