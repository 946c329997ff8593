"""`billing.recover_stripe_events`: a missed delivery window is recoverable.

Stripe retries a delivery for three days, then gives up; while we were down, or refusing, events
pile up as undelivered. Periodically, for every connected account, this job lists the events
Stripe could not deliver (`events.list(delivery_success=false, types=[...])`, at most 20 types per
call, newest first, paged) and stores each through the inbox exactly as the endpoint does (unique
on the event id: an event that did arrive meanwhile, or arrives later, is processed once).
An account whose listing fails is logged and skipped; the next run tries it again.

Stripe keeps an event undelivered even once we have it, so listing all 30 days on every run would
list the same events again and again, and a page cap would keep the oldest out of reach. Each
account's progress is kept on its row (`events_recovered_at`, `events_cycle`): a cycle lists the
events created since three days (Stripe's retry window) before the previous complete cycle began
(30 days for the first); one that reaches the page cap stores, per batch of types, the last id it
listed, and the next run continues from there before a new cycle begins."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update

from spotless.domain.billing import stripe_io
from spotless.domain.billing.models import StripeAccount
from spotless.domain.billing.stripe_events import HANDLED_TYPES
from spotless.domain.billing.webhooks import prepare, store
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

logger = logging.getLogger("spotless.billing.recovery")

JOB = "billing.recover_stripe_events"
TYPES_PER_CALL = 20  # Stripe's limit on `types`
PAGE_SIZE = 100
MAX_PAGES = 20  # per account and type batch and run: the next run continues
LOOKBACK = timedelta(days=30)  # what Stripe keeps
RETRY_WINDOW = timedelta(days=3)  # how long Stripe retries a delivery: older events' state is settled
DONE = ""  # a batch of types listed to its end in this cycle
ACCOUNTS_PAGE = 200


def type_batches(types: tuple[str, ...] = HANDLED_TYPES) -> list[list[str]]:
    return [list(types[i : i + TYPES_PER_CALL]) for i in range(0, len(types), TYPES_PER_CALL)]


async def connected_accounts(rt: JobRuntime) -> list[tuple[UUID, str]]:
    found: list[tuple[UUID, str]] = []
    after: UUID | None = None
    while True:
        async with rt.session() as session:
            rows = (
                await session.execute(
                    text("SELECT org_id, account_id FROM billing_stripe_account_ids(:after, :limit)"),
                    {"after": after, "limit": ACCOUNTS_PAGE},
                )
            ).all()
        found.extend((UUID(str(r.org_id)), str(r.account_id)) for r in rows)
        if len(rows) < ACCOUNTS_PAGE:
            return found
        after = UUID(str(rows[-1].org_id))


async def _progress(rt: JobRuntime, org_id: UUID) -> tuple[datetime | None, dict[str, Any] | None]:
    async with rt.session(org_id) as session:
        row = (
            await session.execute(
                select(StripeAccount.events_recovered_at, StripeAccount.events_cycle).where(
                    StripeAccount.org_id == org_id
                )
            )
        ).one_or_none()
    return (row[0], row[1]) if row else (None, None)


async def _save(rt: JobRuntime, org_id: UUID, **values: Any) -> None:
    async with rt.session(org_id) as session:
        await session.execute(update(StripeAccount).where(StripeAccount.org_id == org_id).values(**values))


def _new_cycle(now: datetime, recovered_at: datetime | None) -> dict[str, Any]:
    since = now - LOOKBACK if recovered_at is None else max(now - LOOKBACK, recovered_at - RETRY_WINDOW)
    return {"started": now.isoformat(), "since": int(since.timestamp()), "after": {}}


async def recover_account(rt: JobRuntime, org_id: UUID, account: str, now: datetime) -> tuple[int, int]:
    """(listed, newly stored) for one connected account: the cycle in progress, else a new one."""
    recovered_at, cycle = await _progress(rt, org_id)
    if cycle is None:
        cycle = _new_cycle(now, recovered_at)
    listed = stored = 0
    left: dict[str, str] = {}
    for index, types in enumerate(type_batches()):
        after: str | None = cycle["after"].get(str(index))
        if after == DONE:
            left[str(index)] = DONE
            continue
        finished = False
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {
                "delivery_success": False,
                "types": types,
                "limit": PAGE_SIZE,
                "created": {"gte": cycle["since"]},
            }
            if after:
                params["starting_after"] = after
            page = await stripe_io.list_events(rt.settings, account, params)
            events = [e for e in page.get("data") or [] if isinstance(e, dict)]
            if not events:
                finished = True
                break
            async with rt.session() as session:
                for event in events:
                    event.setdefault("account", account)
                    prepared = prepare(event)
                    if prepared is None:
                        continue
                    listed += 1
                    if not (await store(session, prepared)).duplicate:
                        stored += 1
            after = events[-1]["id"]
            if not page.get("has_more"):
                finished = True
                break
        left[str(index)] = DONE if finished else (after or DONE)
    if all(v == DONE for v in left.values()):
        await _save(rt, org_id, events_recovered_at=datetime.fromisoformat(cycle["started"]), events_cycle=None)
    else:
        await _save(rt, org_id, events_cycle={**cycle, "after": left})
    return listed, stored


async def recover(rt: JobRuntime, now: datetime | None = None) -> dict[str, int]:
    moment = now or datetime.now(UTC)
    totals = {"accounts": 0, "listed": 0, "stored": 0, "failed": 0}
    for org_id, account in await connected_accounts(rt):
        totals["accounts"] += 1
        try:
            listed, stored = await recover_account(rt, org_id, account, moment)
        except Exception:
            totals["failed"] += 1
            logger.warning("could not list undelivered Stripe events of organisation %s", org_id, exc_info=True)
            continue
        totals["listed"] += listed
        totals["stored"] += stored
    return totals


@job(JOB, every=timedelta(minutes=30), max_retries=2, time_limit_ms=10 * 60_000, max_age_ms=3_600_000)
async def recover_stripe_events(slot: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
        if not mine:
            return
        totals = await recover(rt)
    if totals["stored"] or totals["failed"]:
        logger.info(
            "recovered %d undelivered Stripe event(s) (%d listed) over %d account(s); %d account(s) failed",
            totals["stored"],
            totals["listed"],
            totals["accounts"],
            totals["failed"],
        )


__all__ = ["JOB", "recover", "recover_account", "recover_stripe_events", "type_batches"]
