"""One QuickBooks sync pass for one connection: push what changed here, pull what changed there.

Push (our records within the window, then every link waiting as `pending`):
- customers when an invoice needs one, and linked customers whose client changed (sparse update
  with the SyncToken; a stale one, 5010, re-reads and retries once);
- invoices (our display number as DocNumber; a duplicate, 6140, is `failed` with the reason);
- payments (Payment linked to the invoice) and refunds (RefundReceipt: money paid back).
Creates carry `requestid` = uuid5(org, realm, kind, our id, generation): a retry after a crash or a
timeout replays QuickBooks' first answer, never a second object. A customer whose name exists
there (6240) is never created twice: its link waits in `needs_choice` for the office (link to that
customer, or push under a unique name); its invoices wait with it.

Pull: Change Data Capture of Invoice and Payment since the last read (less QBO_SYNC_BACKFILL_DAYS
of overlap; QBO_SYNC_INITIAL_DAYS back the first time; never past the 30-day window): a linked
invoice whose amounts or status differ from ours (paid in QuickBooks, open here) becomes
`differs`, listed by the reconciliation report; nothing is written to our ledger (billing has no
entry point for outside payments: the office decides).

Window: our records changed since the last complete push (less the backfill), the first time
QBO_SYNC_INITIAL_DAYS back. A record whose pushed digest is unchanged costs no call."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from uuid_utils.compat import uuid7

from spotless.domain.billing import public as billing
from spotless.domain.clients import public as clients
from spotless.domain.integrations.public import access_token
from spotless.domain.integrations.quickbooks.client import (
    TIMEOUT_SECONDS,
    QboClient,
    QboFault,
    with_stale_retry,
)
from spotless.domain.integrations.quickbooks.limiter import RealmLimiter
from spotless.domain.integrations.quickbooks.mapping import (
    DEFAULT_ITEM,
    DEPENDENT,
    DOC_NUMBER_MAX,
    LinkView,
    cents,
    digest,
    invoice_differences,
    invoice_remote,
    money,
    parse_time,
    request_id,
    updated_at,
)
from spotless.domain.integrations.quickbooks.models import QboLink, QboSyncCursor
from spotless.lib.jobs.runtime import JobRuntime

logger = logging.getLogger("spotless.integrations.quickbooks")

CDC_WINDOW = timedelta(days=30)
CDC_MARGIN = timedelta(minutes=10)
CDC_MAX = 1_000
BATCH = 500


@dataclass
class Pass:
    rt: JobRuntime
    org_id: UUID
    connection_id: UUID
    realm: str
    client: QboClient
    now: datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("pushed", "failed", "differs"), 0))
    _item: dict[str, str] | None = None
    _refund_account: dict[str, str] | None = None

    # --- the company's own references ----------------------------------------------------------

    async def service_item(self) -> dict[str, str]:
        """The item our lines are booked to: the company's "Services" item, else its first active
        Service item (QuickBooks requires an ItemRef on every sales line). Looked up once a pass."""
        if self._item is None:
            found = [
                i
                for i in await self.client.query("Item", "select * from Item where Type = 'Service'")
                if i.get("Active", True)
            ]
            chosen = next((i for i in found if i.get("Name") == "Services"), found[0] if found else None)
            self._item = {"value": str(chosen["Id"]), "name": str(chosen.get("Name", ""))} if chosen else DEFAULT_ITEM
        return self._item

    async def refund_account(self) -> dict[str, str] | None:
        """The bank account a RefundReceipt pays back from (QuickBooks requires one): the
        company's first active Bank account; None when it has none."""
        if self._refund_account is None:
            found = await self.client.query("Account", "select * from Account where AccountType = 'Bank'")
            active = [a for a in found if a.get("Active", True)]
            if active:
                self._refund_account = {"value": str(active[0]["Id"]), "name": str(active[0].get("Name", ""))}
        return self._refund_account

    # --- links -------------------------------------------------------------------------------

    async def link(self, kind: str, our_id: UUID) -> LinkView:
        async with self.rt.session(self.org_id) as s:
            await s.execute(
                insert(QboLink)
                .values(
                    id=uuid7(),
                    org_id=self.org_id,
                    connection_id=self.connection_id,
                    realm_id=self.realm,
                    kind=kind,
                    our_id=our_id,
                    generation=0,
                    state="pending",
                    created_at=self.now,
                    updated_at=self.now,
                )
                .on_conflict_do_nothing(constraint="uq_qbo_links_ours")
            )
            row = await s.scalar(
                select(QboLink).where(QboLink.realm_id == self.realm, QboLink.kind == kind, QboLink.our_id == our_id)
            )
            assert row is not None
            if row.connection_id != self.connection_id:
                row.connection_id = self.connection_id  # the company was reconnected: same realm, new row
            return LinkView.of(row)

    async def existing(self, kind: str, our_id: UUID) -> LinkView | None:
        async with self.rt.session(self.org_id) as s:
            row = await s.scalar(
                select(QboLink).where(QboLink.realm_id == self.realm, QboLink.kind == kind, QboLink.our_id == our_id)
            )
            return LinkView.of(row) if row is not None else None

    async def by_qbo_id(self, kind: str, qbo_id: str) -> LinkView | None:
        async with self.rt.session(self.org_id) as s:
            row = await s.scalar(
                select(QboLink).where(QboLink.realm_id == self.realm, QboLink.kind == kind, QboLink.qbo_id == qbo_id)
            )
            return LinkView.of(row) if row is not None else None

    async def save(self, link: LinkView, **values: Any) -> None:
        values.setdefault("updated_at", datetime.now(UTC))
        async with self.rt.session(self.org_id) as s:
            await s.execute(update(QboLink).where(QboLink.id == link.id).values(**values))
        for key, value in values.items():
            if hasattr(link, key):
                setattr(link, key, value)

    async def pushed(self, link: LinkView, answer: dict[str, Any], wanted: str, **values: Any) -> None:
        self.counts["pushed"] += 1
        await self.save(
            link,
            qbo_id=str(answer["Id"]),
            sync_token=str(answer.get("SyncToken", "0")),
            pushed_digest=wanted,
            pushed_at=datetime.now(UTC),
            last_error=None,
            error_code=None,
            conflict_qbo_id=None,
            **{"state": "synced", **values},
        )

    async def refused(self, link: LinkView, wanted: str | None, code: str, message: str, **values: Any) -> None:
        self.counts["failed"] += 1
        await self.save(
            link,
            **{"state": "failed", **values},
            pushed_digest=wanted,
            error_code=code[:16],
            last_error=message[:1_000],
        )

    # --- customers ---------------------------------------------------------------------------

    async def customer(self, client_id: UUID) -> str | None:
        """The client's QuickBooks customer Id, pushing it first if needed; None while it cannot be
        there (its name exists and the office has not chosen, or QuickBooks refused it)."""
        link = await self.link("customer", client_id)
        if link.state == "needs_choice":
            return link.qbo_id
        async with self.rt.session(self.org_id) as s:
            facts = (await clients.clients_by_id(s, [client_id])).get(client_id)
        if facts is None:
            if link.qbo_id is None:
                await self.refused(link, None, "missing", "the client no longer exists here")
            return link.qbo_id
        body: dict[str, Any] = {"DisplayName": (link.display_name or facts.name).strip()[:500]}
        if facts.email:
            body["PrimaryEmailAddr"] = {"Address": facts.email}
        if facts.phone:
            body["PrimaryPhone"] = {"FreeFormNumber": facts.phone}
        wanted = digest(body)
        if link.qbo_id is not None and link.sync_token is None:
            # Linked by the office to a customer that was already there: adopt it as it is.
            try:
                current = await self.client.read("Customer", link.qbo_id)
            except QboFault as fault:
                qbo_id = link.qbo_id
                await self.refused(link, wanted, fault.code, f"QuickBooks customer {qbo_id} could not be read: {fault}")
                return None
            await self.pushed(link, current, wanted)
            return link.qbo_id
        if link.settled(wanted):
            return link.qbo_id
        try:
            if link.qbo_id is None:
                answer = await self.client.create(
                    "Customer", body, request_id(self.org_id, self.realm, "customer", client_id, link.generation)
                )
            else:
                answer = await with_stale_retry(
                    self.client, "Customer", {**body, "Id": link.qbo_id, "SyncToken": link.sync_token}
                )
        except QboFault as fault:
            if fault.code == "6240":
                self.counts["failed"] += 1
                await self.save(
                    link,
                    state="needs_choice",
                    pushed_digest=wanted,
                    generation=link.generation + (link.qbo_id is None),
                    error_code="6240",
                    conflict_qbo_id=fault.existing_id,
                    last_error=(
                        f"A QuickBooks customer is already named {body['DisplayName']!r}"
                        + (f" (Id {fault.existing_id})" if fault.existing_id else "")
                        + ": link this client to it, or push it under a unique name."
                    ),
                )
                return None if link.qbo_id is None else link.qbo_id
            await self.refused(link, wanted, fault.code, str(fault), generation=link.generation + (link.qbo_id is None))
            return link.qbo_id
        await self.pushed(link, answer, wanted)
        return link.qbo_id

    # --- invoices ----------------------------------------------------------------------------

    def invoice_body(self, inv: billing.InvoiceFacts, customer_id: str, item: dict[str, str]) -> dict[str, Any]:
        lines: list[dict[str, Any]] = []
        for line in inv.lines:
            if line.kind == "tax" or line.amount_cents == 0:
                continue
            lines.append(
                {
                    "Amount": money(line.amount_cents),
                    "Description": line.description[:4_000],
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": item},
                }
            )
        rest = inv.total_cents - sum(line.amount_cents for line in inv.lines if line.kind != "tax")
        if rest:
            lines.append(
                {
                    "Amount": money(rest),
                    "Description": "Tax",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": item},
                }
            )
        body: dict[str, Any] = {
            "CustomerRef": {"value": customer_id},
            "Line": lines,
            "CurrencyRef": {"value": inv.currency},
        }
        if inv.display_number:
            body["DocNumber"] = inv.display_number[:DOC_NUMBER_MAX]
        if inv.issued_at:
            body["TxnDate"] = inv.issued_at.date().isoformat()
        if inv.due_on:
            body["DueDate"] = inv.due_on.isoformat()
        return body

    async def judge(self, link: LinkView, inv: billing.InvoiceFacts, remote: dict[str, Any]) -> None:
        found = invoice_differences(inv, remote)
        # A failure (or a push asked for meanwhile) stays what the report shows; the differences are kept.
        state = (
            link.state if link.state in ("pending", "failed", "needs_choice") else ("differs" if found else "synced")
        )
        if state == "differs" and link.state != "differs":
            self.counts["differs"] += 1
        await self.save(link, remote=remote, differences=found or None, state=state, checked_at=datetime.now(UTC))

    async def invoice(self, inv: billing.InvoiceFacts) -> LinkView | None:
        if inv.status == "void" and await self.existing("invoice", inv.id) is None:
            return None  # voided before it ever reached QuickBooks: nothing to keep there
        link = await self.link("invoice", inv.id)
        customer_id = await self.customer(inv.client_id)
        if customer_id is None:
            await self.refused(
                link,
                None,
                "customer",
                "Its customer is not in QuickBooks yet (see the client's item in this report).",
            )
            return link
        body = self.invoice_body(inv, customer_id, await self.service_item())
        wanted = digest(body)
        if link.settled(wanted):
            if link.remote is not None and link.state != "failed":
                await self.judge(link, inv, link.remote)
            return link
        try:
            if link.qbo_id is None:
                answer = await self.client.create(
                    "Invoice", body, request_id(self.org_id, self.realm, "invoice", inv.id, link.generation)
                )
            else:
                answer = await with_stale_retry(
                    self.client, "Invoice", {**body, "Id": link.qbo_id, "SyncToken": link.sync_token}
                )
        except QboFault as fault:
            message = str(fault)
            if fault.code == "6140":
                message = (
                    f"Invoice number {body.get('DocNumber')} is already used by another invoice in QuickBooks "
                    "(duplicate DocNumber, 6140): renumber or remove that one there, then retry."
                )
            await self.refused(link, wanted, fault.code, message, generation=link.generation + (link.qbo_id is None))
            return link
        await self.pushed(link, answer, wanted)
        await self.judge(link, inv, invoice_remote(answer))
        return link

    # --- payments and refunds ----------------------------------------------------------------

    async def movement(self, m: billing.MovementFacts) -> None:
        kind = "payment" if m.kind == "payment" else "refund"
        link = await self.link(kind, m.id)
        if link.qbo_id is not None or (link.state == "failed" and link.error_code not in DEPENDENT):
            return  # the ledger is append-only: what is there stays as it is
        assert m.invoice_id is not None
        invoice_link = await self.existing("invoice", m.invoice_id)
        if invoice_link is None or invoice_link.qbo_id is None:
            async with self.rt.session(self.org_id) as s:
                inv = (await billing.invoices_by_id(s, [m.invoice_id])).get(m.invoice_id)
            invoice_link = await self.invoice(inv) if inv is not None else None
        customer = await self.existing("customer", m.client_id)
        if invoice_link is None or invoice_link.qbo_id is None or customer is None or customer.qbo_id is None:
            await self.refused(link, None, "invoice", "Its invoice is not in QuickBooks yet (see the invoice's item).")
            return
        when = m.occurred_at.date().isoformat()
        if kind == "payment":
            entity = "Payment"
            body: dict[str, Any] = {
                "CustomerRef": {"value": customer.qbo_id},
                "TotalAmt": money(m.amount_cents),
                "TxnDate": when,
                "Line": [
                    {
                        "Amount": money(m.amount_cents),
                        "LinkedTxn": [{"TxnId": invoice_link.qbo_id, "TxnType": "Invoice"}],
                    }
                ],
            }
            if m.reference:
                body["PaymentRefNum"] = m.reference[:21]
        else:
            entity = "RefundReceipt"
            account = await self.refund_account()
            if account is None:
                await self.refused(
                    link,
                    None,
                    "account",
                    "QuickBooks has no bank account to pay the refund back from: add one there (it is picked up "
                    "at the next sync).",
                )
                return
            item = await self.service_item()
            body = {
                "CustomerRef": {"value": customer.qbo_id},
                "DepositToAccountRef": account,
                "TxnDate": when,
                "Line": [
                    {
                        "Amount": money(m.amount_cents),
                        "Description": "Refund",
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": item},
                    }
                ],
                "PrivateNote": f"Spotless refund {m.id} on QuickBooks invoice {invoice_link.qbo_id}",
            }
        wanted = digest(body)
        try:
            answer = await self.client.create(
                entity, body, request_id(self.org_id, self.realm, kind, m.id, link.generation)
            )
        except QboFault as fault:
            await self.refused(link, wanted, fault.code, str(fault), generation=link.generation + 1)
            return
        await self.pushed(link, answer, wanted, remote={"amount_cents": cents(answer.get("TotalAmt"))})

    # --- the pass ----------------------------------------------------------------------------

    async def cursor(self) -> QboSyncCursor:
        async with self.rt.session(self.org_id) as s:
            await s.execute(
                insert(QboSyncCursor)
                .values(
                    id=uuid7(),
                    org_id=self.org_id,
                    connection_id=self.connection_id,
                    realm_id=self.realm,
                    created_at=self.now,
                    updated_at=self.now,
                )
                .on_conflict_do_nothing(constraint="uq_qbo_sync_cursors_org_id_realm_id")
            )
            row = await s.scalar(select(QboSyncCursor).where(QboSyncCursor.realm_id == self.realm))
            assert row is not None
            return row

    async def save_cursor(self, **values: Any) -> None:
        async with self.rt.session(self.org_id) as s:
            await s.execute(
                update(QboSyncCursor)
                .where(QboSyncCursor.realm_id == self.realm)
                .values(**values, connection_id=self.connection_id, updated_at=datetime.now(UTC))
            )

    async def push_window(self, since: datetime) -> datetime:
        """Our records changed since `since`; how far that got (now, or where a full batch stopped:
        the next pass continues from there)."""
        through = self.now
        async with self.rt.session(self.org_id) as s:
            invoices = await billing.invoices_changed_since(s, since, BATCH)
        for inv in invoices:
            await self.invoice(inv)
        if len(invoices) >= BATCH:
            through = min(through, invoices[-1].updated_at)
        async with self.rt.session(self.org_id) as s:
            changed = await clients.clients_changed_since(s, since, None, BATCH)
            linked = set(
                (
                    await s.scalars(
                        select(QboLink.our_id).where(
                            QboLink.realm_id == self.realm,
                            QboLink.kind == "customer",
                            QboLink.qbo_id.is_not(None),
                            QboLink.our_id.in_([c.id for c in changed]),
                        )
                    )
                ).all()
            )
        for c in changed:
            if c.id in linked:
                await self.customer(c.id)
        if len(changed) >= BATCH:
            through = min(through, changed[-1].updated_at)
        async with self.rt.session(self.org_id) as s:
            movements = await billing.movements_since(s, since, BATCH)
        for m in movements:
            await self.movement(m)
        if len(movements) >= BATCH:
            through = min(through, movements[-1].created_at)
        return through

    async def push_waiting(self) -> None:
        """Links left `pending` (a retry, the office's choice) or waiting on another record."""
        async with self.rt.session(self.org_id) as s:
            rows = (
                await s.execute(
                    select(QboLink.kind, QboLink.our_id)
                    .where(
                        QboLink.realm_id == self.realm,
                        (QboLink.state == "pending")
                        | ((QboLink.state == "failed") & QboLink.error_code.in_(DEPENDENT)),
                    )
                    .order_by(QboLink.state != "pending", QboLink.id)
                    .limit(BATCH)
                )
            ).all()
        order = {"customer": 0, "invoice": 1, "payment": 2, "refund": 3}
        for kind, our_id in sorted(rows, key=lambda r: order[r[0]]):
            if kind == "customer":
                await self.customer(our_id)
                continue
            async with self.rt.session(self.org_id) as s:
                if kind == "invoice":
                    inv = (await billing.invoices_by_id(s, [our_id])).get(our_id)
                else:
                    mv = (await billing.movements_by_id(s, [our_id])).get(our_id)
            if kind == "invoice":
                if inv is not None:
                    await self.invoice(inv)
            elif mv is not None:
                await self.movement(mv)

    async def pull(self, since: datetime) -> datetime:
        changes, at = await self.client.cdc(["Invoice", "Payment"], since)
        seen = 0
        latest = since
        for obj in changes["Invoice"]:
            seen += 1
            latest = max(latest, updated_at(obj) or latest)
            link = await self.by_qbo_id("invoice", str(obj.get("Id")))
            if link is None:
                continue
            async with self.rt.session(self.org_id) as s:
                inv = (await billing.invoices_by_id(s, [link.our_id])).get(link.our_id)
            if inv is None:
                continue
            remote: dict[str, Any] = {"deleted": True} if obj.get("status") == "Deleted" else invoice_remote(obj)
            if "sync_token" in remote:
                await self.save(link, sync_token=str(remote["sync_token"]))
            await self.judge(link, inv, remote)
        for obj in changes["Payment"]:
            seen += 1
            latest = max(latest, updated_at(obj) or latest)
            link = await self.by_qbo_id("payment", str(obj.get("Id")))
            if link is None:
                continue  # recorded in QuickBooks: its invoice's balance shows it
            async with self.rt.session(self.org_id) as s:
                mv = (await billing.movements_by_id(s, [link.our_id])).get(link.our_id)
            if mv is None:
                continue
            found: list[dict[str, Any]] = []
            if obj.get("status") == "Deleted":
                found.append({"field": "existence", "ours": "recorded", "theirs": "deleted"})
                remote = {"deleted": True}
            else:
                remote = {"amount_cents": cents(obj.get("TotalAmt"))}
                if remote["amount_cents"] != mv.amount_cents:
                    found.append({"field": "amount_cents", "ours": mv.amount_cents, "theirs": remote["amount_cents"]})
            if found and link.state != "differs":
                self.counts["differs"] += 1
            await self.save(
                link,
                state="differs" if found else "synced",
                differences=found or None,
                remote=remote,
                checked_at=datetime.now(UTC),
            )
        if seen >= CDC_MAX:
            return latest  # more than one answer holds: resume from the last change seen
        stamp = parse_time(at) if at else None
        return stamp or self.now


def _limiter(rt: JobRuntime) -> RealmLimiter:
    return RealmLimiter(rt.redis)


async def run_pass(
    rt: JobRuntime,
    org_id: UUID,
    connection_id: UUID,
    realm: str,
    *,
    window: bool = True,
    limiter: RealmLimiter | None = None,
) -> dict[str, int]:
    """Push and pull for one connection (`window=False`: only the links waiting, no CDC). Raises
    NeedsReconnect (stop), QboUnavailable / ProviderUnavailable (try again next time)."""
    cfg = rt.settings.integrations

    async def token(force: bool) -> str:
        async with rt.session(org_id) as s:
            return await access_token(s, connection_id, org_id=org_id, force_refresh=force, settings=rt.settings)

    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
        client = QboClient(http, cfg.quickbooks_api_base_url, realm, token, limiter or _limiter(rt))
        now = datetime.now(UTC)
        p = Pass(rt=rt, org_id=org_id, connection_id=connection_id, realm=realm, client=client, now=now)
        if not window:
            await p.push_waiting()
            return p.counts
        cursor = await p.cursor()
        backfill = timedelta(days=cfg.qbo_sync_backfill_days)
        initial = now - timedelta(days=cfg.qbo_sync_initial_days)
        push_since = cursor.pushed_through - backfill if cursor.pushed_through else initial
        through = await p.push_window(push_since)
        await p.push_waiting()
        # A full batch: the next pass resumes there (its backfill overlap costs no calls: digests).
        await p.save_cursor(pushed_through=through + backfill if through < now else now)
        floor = now - CDC_WINDOW + CDC_MARGIN
        pull_since = max(cursor.pulled_through - backfill if cursor.pulled_through else initial, floor)
        pulled = await p.pull(pull_since)
        await p.save_cursor(pulled_through=pulled)
        return p.counts
