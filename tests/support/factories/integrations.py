"""Integrations' cross-organisation factories (tests/support/tenancy.py): providers are declared by
code, not created per organisation, so `provider_name` names one of them. Each organisation's
connections are its own (tests/integration/integrations/core/test_connect.py proves it).

`item_id` is a QuickBooks reconciliation item (a qbo_links row) of the organisation's QuickBooks
connection (made once, active): a client whose name exists in QuickBooks, waiting for the office's
link-or-rename choice (so `.../resolve` is accepted and `.../retry` answers 409)."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import text

from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.quickbooks.models import QboLink
from tests.support.factories.clients import api_client_id
from tests.support.factories.db import add
from tests.support.factories.stripe_billing import _admin
from tests.support.tenancy import GLOBAL_PARAMS, REQUEST_BODIES, register

FACTORY_REALM = "4620816365"


@register("provider_name")
async def api_provider_name(client: Any, member: Any, ids: dict[str, str]) -> str:
    return "google"


GLOBAL_PARAMS.add("provider_name")


@register("qbo_item_id")
async def api_qbo_item_id(client: Any, member: Any) -> str:
    client_id = await api_client_id(client, member)
    async with _admin() as db:
        connection_id = await db.scalar(
            text(
                "SELECT id FROM integration_connections WHERE org_id = :o AND provider = 'quickbooks'"
                " AND status = 'active'"
            ),
            {"o": member.org_id},
        )
        if connection_id is None:
            connection = await add(
                db,
                IntegrationConnection(
                    org_id=member.org_id,
                    provider="quickbooks",
                    external_id=FACTORY_REALM,
                    status="active",
                    access_token_sealed="unused",
                    refresh_token_sealed="unused",
                ),
            )
            connection_id = connection.id
        link = await add(
            db,
            QboLink(
                org_id=member.org_id,
                connection_id=connection_id,
                realm_id=FACTORY_REALM,
                kind="customer",
                our_id=client_id,
                state="needs_choice",
                generation=1,
                error_code="6240",
                last_error="A QuickBooks customer is already named 'Victim Client'",
                conflict_qbo_id=str(random.randint(10**6, 10**9)),
            ),
        )
    return str(link.id)


REQUEST_BODIES[("POST", "/v1/quickbooks/items/{qbo_item_id:uuid}/resolve")] = {"action": "link"}
