"""Bodies of /v1/quickbooks/...: the reconciliation report and the office's answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta

from spotless.domain.integrations.quickbooks.models import QboLink
from spotless.lib.schema import NO_NUL, Input, Output

Kind = Literal["customer", "invoice", "payment", "refund"]
State = Literal["pending", "synced", "differs", "failed", "needs_choice"]
# How the report groups the states.
GROUPS = {"synced": "in_sync", "differs": "differs", "failed": "failed", "needs_choice": "failed", "pending": "pending"}


class Difference(Output):
    # total_cents | open_cents | status | amount_cents | existence
    field: str
    ours: Any
    theirs: Any


class ItemError(Output):
    # QuickBooks' fault code (6240 duplicate name, 6140 duplicate number, ...), or ours:
    # `customer` / `invoice` (waiting on another record), `missing`.
    code: str | None
    message: str


class ReconciliationItem(Output):
    id: UUID
    kind: Kind
    our_id: UUID
    realm_id: str
    qbo_id: str | None
    state: State
    # in_sync | differs | failed | pending
    group: str
    differences: list[Difference]
    error: ItemError | None
    # needs_choice: the QuickBooks customer already carrying the name (link to it, or rename).
    existing_qbo_id: str | None
    display_name: str | None
    pushed_at: datetime | None
    checked_at: datetime | None
    # What the office can do with it: retry, link, rename.
    actions: list[str]

    @classmethod
    def from_model(cls, row: QboLink) -> ReconciliationItem:
        actions = ["link", "rename"] if row.state == "needs_choice" else []
        if row.state in ("failed", "differs", "synced"):
            actions.append("retry")
        return cls(
            id=row.id,
            kind=row.kind,  # type: ignore[arg-type]
            our_id=row.our_id,
            realm_id=row.realm_id,
            qbo_id=row.qbo_id,
            state=row.state,  # type: ignore[arg-type]
            group=GROUPS[row.state],
            differences=[
                Difference(field=d["field"], ours=d.get("ours"), theirs=d.get("theirs")) for d in row.differences or []
            ],
            error=ItemError(code=row.error_code, message=row.last_error) if row.last_error else None,
            existing_qbo_id=row.conflict_qbo_id,
            display_name=row.display_name,
            pushed_at=row.pushed_at,
            checked_at=row.checked_at,
            actions=actions,
        )


class ReconciliationSummary(Output):
    in_sync: int
    differs: int
    failed: int
    pending: int


class ConnectionState(Output):
    connection_id: UUID
    realm_id: str | None
    status: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    last_error: str | None


class ReconciliationReport(Output):
    connection: ConnectionState | None
    summary: ReconciliationSummary
    items: list[ReconciliationItem]
    next_cursor: str | None
    has_more: bool
    limit: int


class ItemAccepted(Output):
    """The item queued for a push now (`state` pending); poll the report for the outcome."""

    item: ReconciliationItem


class ResolveRequest(Input):
    """A customer whose name already exists in QuickBooks (6240): `link` this client to that
    QuickBooks customer (`qbo_id`, default the one QuickBooks named), or `rename`: push it under a
    unique name (`display_name`, default "Name (client 1a2b3c4d)")."""

    action: Literal["link", "rename"]
    qbo_id: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=64,
                pattern=r"^[0-9A-Za-z-]+$",
                description="a QuickBooks customer Id (letters, digits, dashes), e.g. `58`",
            ),
        ]
        | None
    ) = None
    display_name: Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)] | None = None
