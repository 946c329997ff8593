"""The `qbo-sync` job (`integrations.qbo_sync`) and the office's retries (`integrations.qbo_push_waiting`).

The guides' safe cadence: the scheduler may send `qbo_sync` every minute; each active QuickBooks
connection is claimed (`claim_due`) only once QBO_SYNC_INTERVAL_SECONDS have passed since its last
claim, by one runner (SKIP LOCKED), and disconnected or needs-reconnect ones never are. A pass that
fails is recorded on the connection (`record_sync`) and tried again at its next interval; a dead
grant (NeedsReconnect) stops it without a retry. Everything a pass does is idempotent (links,
digests, requestid), so a worker that died halfway is simply followed by the next pass."""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from spotless.domain.integrations.public import (
    QUICKBOOKS,
    DueConnection,
    NeedsReconnect,
    ProviderUnavailable,
    claim_due,
    record_sync,
)
from spotless.domain.integrations.quickbooks.client import QboError
from spotless.domain.integrations.quickbooks.sync import run_pass
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime

logger = logging.getLogger("spotless.integrations.quickbooks")

JOB = "integrations.qbo_sync"
PUSH_JOB = "integrations.qbo_push_waiting"
CLAIM_LIMIT = 20


async def sync_one(rt: JobRuntime, due: DueConnection) -> bool:
    """One connection's pass; whether it went through. Never raises for the provider's failures."""
    if not due.external_id:
        async with rt.session(due.org_id) as s:
            await record_sync(s, due.id, ok=False, error="the connection has no QuickBooks company (realmId)")
        return False
    error: str | None = None
    try:
        counts = await run_pass(rt, due.org_id, due.id, due.external_id)
    except NeedsReconnect:
        logger.warning("QuickBooks connection %s needs reconnecting: its sync stops", due.id)
        return False
    except (QboError, ProviderUnavailable, TimeoutError) as exc:
        error = str(exc) or type(exc).__name__
    except Exception:
        logger.exception("QuickBooks sync of connection %s failed", due.id)
        error = "internal error (see the worker's log)"
    else:
        logger.info("QuickBooks sync of connection %s: %s", due.id, counts)
    async with rt.session(due.org_id) as s:
        await record_sync(s, due.id, ok=error is None, error=error)
    if error is not None:
        logger.warning("QuickBooks sync of connection %s failed: %s", due.id, error)
    return error is None


async def sync_due(rt: JobRuntime) -> int:
    """Every due connection, one after another; how many were claimed."""
    if not rt.settings.integrations.quickbooks_configured:
        return 0
    interval = rt.settings.integrations.qbo_sync_interval_seconds
    async with rt.session() as s:
        due = await claim_due(s, QUICKBOOKS, interval, CLAIM_LIMIT)
    for connection in due:
        await sync_one(rt, connection)
    return len(due)


@job(
    JOB,
    every=timedelta(minutes=1),
    aliases=("qbo-sync",),
    max_retries=0,
    time_limit_ms=15 * 60_000,
    max_age_ms=10 * 60_000,
)
async def qbo_sync(slot: str | None = None) -> None:
    await sync_due(get_runtime())


@job(PUSH_JOB, max_retries=5, min_backoff_ms=15_000, time_limit_ms=10 * 60_000)
async def qbo_push_waiting(org_id: UUID, connection_id: UUID, realm_id: str) -> None:
    """What the office sent back (retry, link-or-rename): the waiting links pushed now."""
    rt = get_runtime()
    try:
        await run_pass(rt, org_id, connection_id, realm_id, window=False)
    except NeedsReconnect:
        logger.warning("QuickBooks connection %s needs reconnecting: nothing pushed", connection_id)
