"""The reconciliation report and the office's answers to it (retry, link-or-rename).

Everything reads and writes in the request's session, bound to the caller's organisation (RLS):
another organisation's items are not found (404)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.clients import public as clients
from spotless.domain.identity.public import Principal
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.quickbooks.actors import qbo_push_waiting
from spotless.domain.integrations.quickbooks.mapping import unique_display_name
from spotless.domain.integrations.quickbooks.models import QboLink
from spotless.domain.integrations.quickbooks.schemas import GROUPS, ConnectionState, ReconciliationSummary
from spotless.lib.errors import Problem, not_found
from spotless.lib.pagination import Keyset

ITEMS = Keyset[QboLink]("qbo_links", [QboLink.id], [UUID], key=lambda r: (r.id,))
STATES_OF = {
    "in_sync": ("synced",),
    "differs": ("differs",),
    "failed": ("failed", "needs_choice"),
    "pending": ("pending",),
}


async def connection(session: AsyncSession) -> IntegrationConnection | None:
    """The organisation's live QuickBooks connection (the newest when several were made)."""
    return await session.scalar(
        select(IntegrationConnection)
        .where(IntegrationConnection.provider == "quickbooks", IntegrationConnection.status != "disconnected")
        .order_by(IntegrationConnection.created_at.desc())
        .limit(1)
    )


def connection_state(row: IntegrationConnection | None) -> ConnectionState | None:
    if row is None:
        return None
    return ConnectionState(
        connection_id=row.id,
        realm_id=row.external_id,
        status=row.status,
        last_sync_at=row.last_sync_at,
        next_sync_at=row.next_sync_at,
        last_error=row.last_error,
    )


async def summary(session: AsyncSession) -> ReconciliationSummary:
    counts = dict.fromkeys(("in_sync", "differs", "failed", "pending"), 0)
    for state, n in await session.execute(select(QboLink.state, func.count()).group_by(QboLink.state)):
        counts[GROUPS[state]] += int(n)
    return ReconciliationSummary(**counts)


async def list_items(
    session: AsyncSession, group: str | None, kind: str | None, cursor: str | None, limit: int
) -> tuple[list[QboLink], str | None, bool]:
    stmt = select(QboLink)
    if group:
        stmt = stmt.where(QboLink.state.in_(STATES_OF[group]))
    if kind:
        stmt = stmt.where(QboLink.kind == kind)
    rows = (await session.scalars(ITEMS.apply(stmt, cursor, limit))).all()
    return ITEMS.page(rows, limit)


async def _item(session: AsyncSession, item_id: UUID) -> QboLink:
    row = await session.scalar(select(QboLink).where(QboLink.id == item_id).with_for_update())
    if row is None:
        raise not_found("QuickBooks item")
    return row


def _queue(session: AsyncSession, row: QboLink) -> None:
    qbo_push_waiting.enqueue(session, row.org_id, row.connection_id, row.realm_id)


async def _live(session: AsyncSession, row: QboLink) -> None:
    found = await session.scalar(
        select(IntegrationConnection.status).where(IntegrationConnection.id == row.connection_id)
    )
    if found != "active":
        raise Problem(
            409,
            "integration-not-connected",
            "QuickBooks is not connected",
            "This item's QuickBooks connection is not active: connect QuickBooks again, then retry.",
        )


async def retry(session: AsyncSession, principal: Principal, item_id: UUID) -> QboLink:
    """Push the item again now: a refused create is attempted anew (a new requestid), a pushed one
    is sent again and re-read."""
    row = await _item(session, item_id)
    if row.state in ("pending", "needs_choice"):
        raise Problem(
            409,
            "qbo-item-not-retryable",
            "The item cannot be retried",
            "It is already waiting to be pushed."
            if row.state == "pending"
            else "Its customer name exists in QuickBooks: link it or rename it (POST .../resolve).",
            state=row.state,
        )
    await _live(session, row)
    before = row.state
    row.state = "pending"
    row.pushed_digest = None
    row.updated_at = datetime.now(UTC)
    _queue(session, row)
    record_audit(session, principal, "quickbooks.retry", "qbo_link", row.id, before={"state": before})
    await session.flush()
    return row


async def resolve(
    session: AsyncSession, principal: Principal, item_id: UUID, action: str, qbo_id: str | None, name: str | None
) -> QboLink:
    row = await _item(session, item_id)
    if row.kind != "customer" or row.state != "needs_choice":
        raise Problem(
            409,
            "qbo-no-choice-pending",
            "There is nothing to choose for this item",
            "Link-or-rename is for a customer whose name already exists in QuickBooks (state needs_choice).",
            state=row.state,
        )
    await _live(session, row)
    after: dict[str, Any] = {"action": action}
    if action == "link":
        target = qbo_id or row.conflict_qbo_id
        if not target:
            raise Problem(400, "qbo-id-required", "Name the QuickBooks customer", "Send `qbo_id` to link to.")
        taken = await session.scalar(
            select(QboLink.our_id).where(
                QboLink.realm_id == row.realm_id,
                QboLink.kind == "customer",
                QboLink.qbo_id == target,
                QboLink.id != row.id,
            )
        )
        if taken is not None:
            raise Problem(
                409,
                "qbo-customer-already-linked",
                "That QuickBooks customer is linked to another client",
                f"QuickBooks customer {target} is already another client's: pick another, or rename.",
            )
        row.qbo_id = target
        row.sync_token = None  # read when adopted: the push takes it as it is
        after["qbo_id"] = target
    else:
        if name is None:
            facts = (await clients.clients_by_id(session, [row.our_id])).get(row.our_id)
            if facts is None:
                raise not_found("client")
            name = unique_display_name(facts.name, row.our_id)
        row.display_name = name
        after["display_name"] = name
    row.state = "pending"
    row.pushed_digest = None
    row.conflict_qbo_id = None
    row.updated_at = datetime.now(UTC)
    _queue(session, row)
    record_audit(session, principal, "quickbooks.resolve", "qbo_link", row.id, after=after)
    await session.flush()
    return row
