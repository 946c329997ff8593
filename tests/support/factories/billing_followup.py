"""The follow-up routes' cross-organisation factory (tests/support/tenancy.py): an issued invoice
being chased (an active follow-up), written below the API (no route makes invoices yet)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from spotless.domain.billing.models import Followup
from spotless.settings import normalize_database_url
from tests.support.factories.billing import new_invoice
from tests.support.factories.clients import api_client_id
from tests.support.factories.db import add, arrange
from tests.support.tenancy import register

_NUMBERS = itertools.count(900_001)


@register("invoice_id")
async def api_invoice_id(client: Any, member: Any) -> str:
    from tests.conftest import ADMIN_URL  # the cluster admin, as `arrange` always is

    client_id = UUID(await api_client_id(client, member))
    engine = create_async_engine(normalize_database_url(ADMIN_URL), poolclass=NullPool)
    try:
        async with arrange(engine) as db:
            invoice = await new_invoice(
                db, member.org_id, client_id, series="2026", number=next(_NUMBERS), status="issued"
            )
            await add(
                db,
                Followup(
                    org_id=member.org_id,
                    invoice_id=invoice.id,
                    client_id=client_id,
                    reason="overdue",
                    next_run_at=datetime.now(UTC) + timedelta(days=1),
                ),
            )
    finally:
        await engine.dispose()
    return str(invoice.id)
