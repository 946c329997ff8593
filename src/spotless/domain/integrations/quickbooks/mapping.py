"""How our records and QuickBooks' objects map onto each other: the link as the sync sees it, the
deterministic `requestid` of a create, the digest that says whether a record changed since it was
pushed, money in cents, and how an invoice there is compared with ours."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from spotless.domain.billing import public as billing
from spotless.domain.integrations.quickbooks.models import QboLink

REQUEST_NAMESPACE = uuid.UUID("6f1c9a52-3a7e-4d53-9f0e-0b7a1c2d9e41")
# Failures caused by another record (its customer waits for a choice, its invoice is not there):
# tried again on every pass, at no cost while the cause stands.
DEPENDENT = ("customer", "invoice", "account")
# QuickBooks' DocNumber holds 21 characters.
DOC_NUMBER_MAX = 21
# A new QuickBooks company's own service item, used when the company has no active Service item.
DEFAULT_ITEM = {"value": "1", "name": "Services"}


def request_id(org_id: UUID, realm: str, kind: str, our_id: UUID, generation: int) -> str:
    return str(uuid.uuid5(REQUEST_NAMESPACE, f"{org_id}:{realm}:{kind}:{our_id}:{generation}"))


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def cents(amount: Any) -> int:
    return round(float(amount or 0) * 100)


def money(value: int) -> float:
    return round(value / 100, 2)


def unique_display_name(name: str, client_id: UUID) -> str:
    return f"{name} (client {str(client_id)[-8:]})"


@dataclass
class LinkView:
    id: UUID
    kind: str
    our_id: UUID
    qbo_id: str | None
    sync_token: str | None
    generation: int
    display_name: str | None
    pushed_digest: str | None
    state: str
    error_code: str | None
    remote: dict[str, Any] | None

    @classmethod
    def of(cls, row: QboLink) -> LinkView:
        return cls(
            id=row.id,
            kind=row.kind,
            our_id=row.our_id,
            qbo_id=row.qbo_id,
            sync_token=row.sync_token,
            generation=row.generation,
            display_name=row.display_name,
            pushed_digest=row.pushed_digest,
            state=row.state,
            error_code=row.error_code,
            remote=row.remote,
        )

    def settled(self, wanted: str) -> bool:
        """Pushed as it is now (or refused for good as it is now): nothing to call."""
        if self.pushed_digest != wanted or self.state == "pending":
            return False
        return self.state in ("synced", "differs") or (self.state == "failed" and self.error_code not in DEPENDENT)


def theirs_status(total: int, balance: int) -> str:
    if total > 0 and balance <= 0:
        return "paid"
    if balance < total:
        return "partially_paid"
    return "open"


OURS_STATUS = {
    "issued": "open",
    "partially_paid": "partially_paid",
    "paid": "paid",
    "partially_refunded": "paid",
    "refunded": "paid",
    "void": "void",
    "uncollectible": "uncollectible",
}


def invoice_differences(ours: billing.InvoiceFacts, remote: dict[str, Any]) -> list[dict[str, Any]]:
    if remote.get("deleted"):
        return [{"field": "existence", "ours": OURS_STATUS.get(ours.status, ours.status), "theirs": "deleted"}]
    found: list[dict[str, Any]] = []
    total, balance = int(remote["total_cents"]), int(remote["balance_cents"])
    if total != ours.total_cents:
        found.append({"field": "total_cents", "ours": ours.total_cents, "theirs": total})
    if balance != ours.open_cents:
        found.append({"field": "open_cents", "ours": ours.open_cents, "theirs": balance})
    mine, theirs = OURS_STATUS.get(ours.status, ours.status), theirs_status(total, balance)
    if mine != theirs:
        found.append({"field": "status", "ours": mine, "theirs": theirs})
    return found


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def updated_at(obj: dict[str, Any]) -> datetime | None:
    return parse_time((obj.get("MetaData") or {}).get("LastUpdatedTime"))


def invoice_remote(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "total_cents": cents(obj.get("TotalAmt")),
        "balance_cents": cents(obj.get("Balance", obj.get("TotalAmt"))),
        "sync_token": str(obj.get("SyncToken", "0")),
        "doc_number": obj.get("DocNumber"),
    }
