"""Test data in one place: import from here.

Below the API (`new_*`), each factory takes a session, adds one row (and its children) with
sensible defaults, flushes it and returns the model; keyword arguments override any column:

    async with arrange(owner_engine) as db:          # the owner engine, one committed transaction
        org = await new_org(db, timezone="Europe/Paris")
        worker = await new_worker(db, org.id, hours=(time(9), time(13)))

`make_org`, `make_member`, `arrange_world`, `add_time_off` and `set_buffer` do the same in a
transaction of their own. Through the API, as a client would: `api_world`, `api_worker` (and
`tests.support.identity` for signing up and adding members). The `api_*_id` factories are what
tests/support/tenancy.py calls to make another organisation's resources for each path parameter;
importing this package registers them."""

from tests.support.factories import billing as _billing  # noqa: F401 (registers invoice_id)
from tests.support.factories import evidence as _evidence  # noqa: F401 (registers item_id, photo_id)
from tests.support.factories import exports as _exports  # noqa: F401 (registers export_id)
from tests.support.factories import integrations as _integrations  # noqa: F401 (registers provider_name)
from tests.support.factories import messaging as _messaging  # noqa: F401 (registers kind)
from tests.support.factories import notifications as _notifications  # noqa: F401 (registers digest_key)
from tests.support.factories import retention as _retention  # noqa: F401 (retention bodies)
from tests.support.factories import stripe_billing  # noqa: F401 (registers the Stripe routes' factories)
from tests.support.factories import webhooks as _webhooks  # noqa: F401 (registers endpoint_id, message_id)
from tests.support.factories.billing_documents import api_link_id, api_link_token, new_issued_invoice
from tests.support.factories.catalog import api_addon_id, api_service_id, new_addon, new_service
from tests.support.factories.clients import api_address_id, api_client_id, new_address, new_client
from tests.support.factories.db import AppSessions, add, app_sessions, arrange
from tests.support.factories.identity import (
    api_invitation_id,
    api_user_id,
    make_member,
    make_org,
    new_idempotency_key,
    new_member,
    new_membership,
    new_org,
    new_user,
)
from tests.support.factories.scheduling import (
    World,
    add_time_off,
    api_booking_id,
    api_hold_id,
    api_occurrence_date,
    api_series_id,
    api_worker,
    api_world,
    arrange_world,
    hold_body,
    new_booking,
    new_scheduling_settings,
    new_series,
    next_weekday,
    set_buffer,
)
from tests.support.factories.system import new_heartbeat, new_scheduled_run
from tests.support.factories.workforce import (
    EVERY_DAY,
    api_team_id,
    api_time_off_id,
    api_worker_id,
    new_team,
    new_time_off,
    new_worker,
)

__all__ = [
    "EVERY_DAY",
    "AppSessions",
    "World",
    "add",
    "add_time_off",
    "api_addon_id",
    "api_address_id",
    "api_booking_id",
    "api_client_id",
    "api_hold_id",
    "api_invitation_id",
    "api_link_id",
    "api_link_token",
    "api_occurrence_date",
    "api_series_id",
    "api_service_id",
    "api_team_id",
    "api_time_off_id",
    "api_user_id",
    "api_worker",
    "api_worker_id",
    "api_world",
    "app_sessions",
    "arrange",
    "arrange_world",
    "hold_body",
    "make_member",
    "make_org",
    "new_addon",
    "new_address",
    "new_booking",
    "new_client",
    "new_heartbeat",
    "new_idempotency_key",
    "new_issued_invoice",
    "new_member",
    "new_membership",
    "new_org",
    "new_scheduled_run",
    "new_scheduling_settings",
    "new_series",
    "new_service",
    "new_team",
    "new_time_off",
    "new_user",
    "new_worker",
    "next_weekday",
    "set_buffer",
]
