"""When a payment fails: the follow-up schedule of one unpaid invoice.

A failed automatic charge (`PaymentFailed`) or an invoice gone overdue (`InvoiceOverdue`) starts
a follow-up (at most one active per invoice: a second trigger joins the first). Its steps run on
the days the organisation set (`billing_settings.followup_days`, e.g. 1, 3, 7, 14 days after the
start). Each step, once (`followup_steps` is unique per step), sends the client a fresh pay link
and a card-update link and tells the office (`billing.send_followup_step`, after commit). Both
links carry one token minted when the step is sent (`StepNotice.pay_url`, `card_update_url`, on
the app's page `BILLING_PAY_LINK_URL`; only its hash is stored, never in the outbox); until
messaging lands the sender only logs what it would send: kind, invoice, step, never a link.
After step `followup_hold_after_step` the client's future visits go on payment hold
(`PaymentHoldRequested`, heard by scheduling: kept in the schedule, no cleaner sent).

The follow-up resolves when the invoice is paid (`InvoicePaid`), voided (`InvoiceVoided`),
written off (`issuing.mark_uncollectible`, in its transaction) or found settled when a step comes due, and the office may stop it; either way a
hold it applied is released (`PaymentHoldReleased`).

`billing.followup_due` runs every few minutes: a SECURITY DEFINER function lists the due
follow-ups of every organisation (ids only), and each is then claimed in its own organisation's
RLS scope with `FOR UPDATE SKIP LOCKED`, so two runs at once never run a step twice (and the
unique step row is the backstop). Every function takes `now`, so tests drive the clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.events import (
    InvoiceEvent,
    InvoiceOverdue,
    InvoicePaid,
    InvoiceVoided,
    PaymentFailed,
    PaymentHoldReleased,
    PaymentHoldRequested,
)
from spotless.domain.billing.ledger import open_cents
from spotless.domain.billing.links import mint
from spotless.domain.billing.models import BillingSettings, Followup, FollowupStep, Invoice, InvoiceLink
from spotless.domain.billing.settings import get_settings
from spotless.domain.identity.public import Principal
from spotless.lib.errors import conflict, not_found
from spotless.lib.events import emit, subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

logger = logging.getLogger("spotless.billing.followup")

DUE_JOB = "billing.followup_due"
PAGE = 200
# An invoice still owed: the states a follow-up chases.
OWED = ("issued", "partially_paid")
# How long the fresh pay link of a step lives (the next step sends another).
LINK_DAYS = 30


def schedule_days(settings: BillingSettings) -> list[int]:
    """The organisation's step days (after the start), in order, each once."""
    return sorted({d for d in settings.followup_days or [] if d >= 0})


_DUE = text("SELECT org_id, followup_id FROM billing_due_followups(:now, :after, :limit)")


# --- starting, resolving, stopping ----------------------------------------------------------------


async def start_followup(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, reason: str, *, now: datetime | None = None
) -> Followup | None:
    """Start chasing an owed invoice (the first step `followup_days[0]` days from `now`). An
    invoice already chased keeps its follow-up; one settled meanwhile, or an organisation with no
    follow-up days, starts nothing."""
    moment = now or datetime.now(UTC)
    invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id))
    if invoice is None or invoice.kind != "invoice" or invoice.status not in OWED:
        return None  # a credit note is never chased
    settings = await get_settings(session, org_id)
    days = schedule_days(settings)
    if not days:
        return None
    inserted = await session.scalar(
        insert(Followup)
        .values(
            id=uuid7(),
            org_id=org_id,
            invoice_id=invoice_id,
            client_id=invoice.client_id,
            reason=reason,
            step=0,
            next_run_at=moment + timedelta(days=days[0]),
            status="active",
            hold_applied=False,
            created_at=moment,
            updated_at=moment,
        )
        .on_conflict_do_nothing(index_elements=["org_id", "invoice_id"], index_where=text("status = 'active'"))
        .returning(Followup.id)
    )
    if inserted is None:
        return None  # already chased
    record_audit(
        session,
        None,
        "followup.start",
        "invoice",
        invoice_id,
        after={"reason": reason, "first_step_at": (moment + timedelta(days=days[0])).isoformat()},
        org_id=org_id,
    )
    return await session.get(Followup, inserted)


async def _active(session: AsyncSession, invoice_id: UUID) -> Followup | None:
    return await session.scalar(
        select(Followup).where(Followup.invoice_id == invoice_id, Followup.status == "active").with_for_update()
    )


def _close(session: AsyncSession, followup: Followup, status: str, moment: datetime) -> None:
    followup.status = status
    followup.next_run_at = None
    followup.updated_at = moment
    if followup.hold_applied:
        emit(
            session,
            PaymentHoldReleased(org_id=followup.org_id, client_id=followup.client_id, invoice_id=followup.invoice_id),
        )


async def resolve_followup(
    session: AsyncSession, org_id: UUID, invoice_id: UUID, why: str, *, now: datetime | None = None
) -> Followup | None:
    """The invoice is settled (`why`: paid, void, uncollectible): its follow-up ends and any hold
    it put on the client's visits is released. Nothing to do when none is active."""
    moment = now or datetime.now(UTC)
    followup = await _active(session, invoice_id)
    if followup is None:
        return None
    _close(session, followup, "resolved", moment)
    record_audit(
        session,
        None,
        "followup.resolve",
        "invoice",
        invoice_id,
        after={"why": why, "step": followup.step},
        org_id=org_id,
    )
    return followup


async def stop_followup(session: AsyncSession, principal: Principal, invoice_id: UUID) -> Followup:
    """The office stops chasing (a payment plan, a dispute sorted out by phone): no more steps,
    and the client's visits are released if this follow-up held them."""
    await _invoice(session, invoice_id)
    followup = await _active(session, invoice_id)
    if followup is None:
        raise conflict("followup-not-active", "This invoice has no active follow-up to stop.")
    _close(session, followup, "stopped", datetime.now(UTC))
    record_audit(
        session,
        principal,
        "followup.stop",
        "invoice",
        invoice_id,
        before={"status": "active"},
        after={"status": "stopped", "step": followup.step, "hold_released": followup.hold_applied},
    )
    return followup


async def payment_hold_wanted(session: AsyncSession, invoice_id: UUID) -> bool:
    """Does an active follow-up of this invoice still hold the client's visits? (Scheduling asks
    before placing a hold, so a release heard first is not undone by a late request.)"""
    found = await session.scalar(
        select(Followup.id).where(
            Followup.invoice_id == invoice_id, Followup.status == "active", Followup.hold_applied.is_(True)
        )
    )
    return found is not None


# --- running the steps ------------------------------------------------------------------------------


@dataclass
class DueTotals:
    steps: int = 0
    holds: int = 0
    resolved: int = 0


async def run_due_followup(session: AsyncSession, org_id: UUID, followup_id: UUID, now: datetime) -> str | None:
    """Run the next step of one follow-up if it is due and nobody else is running it. Answers
    what happened: "step", "hold" (a step that also held the visits), "resolved", or None."""
    followup = await session.scalar(
        select(Followup)
        .where(Followup.id == followup_id, Followup.status == "active", Followup.next_run_at <= now)
        .with_for_update(skip_locked=True)
    )
    if followup is None:
        return None
    status = await session.scalar(select(Invoice.status).where(Invoice.id == followup.invoice_id))
    if status not in OWED:
        _close(session, followup, "resolved", now)
        record_audit(
            session,
            None,
            "followup.resolve",
            "invoice",
            followup.invoice_id,
            after={"why": status or "gone", "step": followup.step},
            org_id=org_id,
        )
        return "resolved"
    settings = await get_settings(session, org_id)
    days = schedule_days(settings)
    step = followup.step + 1
    ran = await session.scalar(
        insert(FollowupStep)
        .values(
            id=uuid7(), org_id=org_id, followup_id=followup.id, step=step, ran_at=now, created_at=now, updated_at=now
        )
        .on_conflict_do_nothing(index_elements=["followup_id", "step"])
        .returning(FollowupStep.id)
    )
    due_at = followup.next_run_at or now
    followup.step = step
    # Steps keep their days from the start: the next is as far after this one as the settings say.
    followup.next_run_at = due_at + timedelta(days=days[step] - days[step - 1]) if step < len(days) else None
    followup.updated_at = now
    if ran is None:
        return None  # this step already ran (the row is the backstop): only the schedule moved on
    send_followup_step.enqueue(session, org_id, followup.id, step)
    outcome = "step"
    hold_after = settings.followup_hold_after_step
    if hold_after is not None and step >= hold_after and not followup.hold_applied:
        followup.hold_applied = True
        emit(
            session,
            PaymentHoldRequested(org_id=org_id, client_id=followup.client_id, invoice_id=followup.invoice_id),
        )
        outcome = "hold"
    record_audit(
        session,
        None,
        "followup.step",
        "invoice",
        followup.invoice_id,
        after={"step": step, "of": len(days), "hold_applied": followup.hold_applied},
        org_id=org_id,
    )
    return outcome


async def run_due(now: datetime) -> DueTotals:
    """Every due follow-up of every organisation, each in its organisation's scope and its own
    transaction (one failing does not hold back the rest)."""
    rt = get_runtime()
    totals = DueTotals()
    after = UUID(int=0)
    while True:
        async with rt.session() as s:
            page = list(await s.execute(_DUE, {"now": now, "after": after, "limit": PAGE}))
        for org_id, followup_id in page:
            try:
                async with rt.session(org_id) as s:
                    outcome = await run_due_followup(s, org_id, followup_id, now)
            except Exception:
                logger.exception("follow-up %s could not run its step; it stays due", followup_id)
                continue
            if outcome in ("step", "hold"):
                totals.steps += 1
                totals.holds += outcome == "hold"
            elif outcome == "resolved":
                totals.resolved += 1
        if len(page) < PAGE:
            return totals
        after = page[-1][1]


@job(DUE_JOB, every=timedelta(minutes=10), max_retries=3, time_limit_ms=10 * 60_000, max_age_ms=3_600_000)
async def followup_due(slot: str | None = None, now: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, DUE_JOB, slot) as mine:
        if not mine:
            return
        totals = await run_due(datetime.fromisoformat(now) if now else datetime.now(UTC))
        if totals.steps or totals.resolved:
            logger.info(
                "follow-ups: %d step(s) run, %d hold(s) requested, %d resolved",
                totals.steps,
                totals.holds,
                totals.resolved,
            )


# --- what each step sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepNotice:
    """What one step sends. `token` opens the fresh link minted for this send: `pay_url` (view
    and pay the invoice) and `card_update_url` (put a new card on file, the page behind
    POST /v1/pay/{token}/card-setup) both carry it. They live only in memory, never in the
    outbox, a log or Redis; only the token's hash is stored (`invoice_links`)."""

    org_id: UUID
    invoice_id: UUID
    display_number: str | None
    client_id: UUID
    step: int
    steps: int
    hold_applied: bool
    open_cents: int
    currency: str
    token: str
    link_expires_at: datetime
    pay_url: str
    card_update_url: str

    def __repr__(self) -> str:  # a notice that reaches a log line or a traceback shows no link
        return f"StepNotice(invoice_id={self.invoice_id}, step={self.step}/{self.steps})"


def link_urls(pay_link_url: str, token: str) -> tuple[str, str]:
    """(pay link, card-update link) of a token on the app's pay page (`BILLING_PAY_LINK_URL`)."""
    base = pay_link_url.rstrip("/")
    return f"{base}/{token}", f"{base}/{token}/card"


class FollowupSender(Protocol):
    async def send(self, notice: StepNotice) -> None: ...


class LoggingSender:
    """Until messaging lands: says what would be sent (kind, invoice, step), never the link."""

    async def send(self, notice: StepNotice) -> None:
        logger.info(
            "follow-up step %d/%d of invoice %s (%s): would send the client a pay link and a card-update link "
            "(%d %s open, link valid until %s)",
            notice.step,
            notice.steps,
            notice.invoice_id,
            notice.display_number,
            notice.open_cents,
            notice.currency,
            notice.link_expires_at.date().isoformat(),
        )
        logger.info(
            "follow-up step %d/%d of invoice %s (%s): would tell the office (visits on payment hold: %s)",
            notice.step,
            notice.steps,
            notice.invoice_id,
            notice.display_number,
            "yes" if notice.hold_applied else "no",
        )


SENDER: FollowupSender = LoggingSender()


async def _fresh_link(session: AsyncSession, org_id: UUID, invoice_id: UUID, now: datetime) -> tuple[str, datetime]:
    """A new public link to the invoice (a system one: no creator); only its hash is stored."""
    token, digest = mint()
    expires_at = now + timedelta(days=LINK_DAYS)
    session.add(
        InvoiceLink(
            org_id=org_id,
            invoice_id=invoice_id,
            token_hash=digest,
            expires_at=expires_at,
            created_by=None,
        )
    )
    await session.flush()
    return token, expires_at


async def prepare_step(
    session: AsyncSession, org_id: UUID, followup_id: UUID, step: int, now: datetime, *, pay_link_url: str
) -> StepNotice | None:
    """A fresh link for the step (its pay and card-update URLs), unless the chase is over
    meanwhile (paid, stopped, written off)."""
    followup = await session.scalar(select(Followup).where(Followup.id == followup_id))
    if followup is None or followup.status != "active":
        return None
    invoice = await session.scalar(select(Invoice).where(Invoice.id == followup.invoice_id))
    if invoice is None or invoice.status not in OWED:
        return None
    settings = await get_settings(session, org_id)
    token, expires_at = await _fresh_link(session, org_id, invoice.id, now)
    pay_url, card_update_url = link_urls(pay_link_url, token)
    return StepNotice(
        org_id=org_id,
        invoice_id=invoice.id,
        display_number=invoice.display_number,
        client_id=invoice.client_id,
        step=step,
        steps=len(schedule_days(settings)),
        hold_applied=followup.hold_applied,
        open_cents=open_cents(invoice),
        currency=invoice.currency,
        token=token,
        link_expires_at=expires_at,
        pay_url=pay_url,
        card_update_url=card_update_url,
    )


@job("billing.send_followup_step", max_retries=8, min_backoff_ms=5_000, time_limit_ms=60_000)
async def send_followup_step(org_id: UUID, followup_id: UUID, step: int) -> None:
    """Send one step's messages (at least once: a redelivery mints another link, harmlessly)."""
    rt = get_runtime()
    async with rt.session(org_id) as s:
        notice = await prepare_step(
            s, org_id, followup_id, step, datetime.now(UTC), pay_link_url=rt.settings.stripe.pay_link_url
        )
    if notice is not None:
        await SENDER.send(notice)


# --- reacting to billing's own events -----------------------------------------------------------------


@subscriber(PaymentFailed, InvoiceOverdue, name="billing.start_followup", max_retries=10, time_limit_ms=60_000)
async def start_on_failure(event: InvoiceEvent, event_id: str) -> None:
    reason = "charge_failed" if isinstance(event, PaymentFailed) else "overdue"
    async with get_runtime().session(event.org_id) as s:
        await start_followup(s, event.org_id, event.invoice_id, reason)


@subscriber(InvoicePaid, InvoiceVoided, name="billing.resolve_followup", max_retries=10, time_limit_ms=60_000)
async def resolve_on_settlement(event: InvoiceEvent, event_id: str) -> None:
    why = "paid" if isinstance(event, InvoicePaid) else "void"
    async with get_runtime().session(event.org_id) as s:
        await resolve_followup(s, event.org_id, event.invoice_id, why)


# --- reading ---------------------------------------------------------------------------------------------


async def _invoice(session: AsyncSession, invoice_id: UUID) -> Invoice:
    invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id))
    if invoice is None:
        raise not_found("invoice")
    return invoice


async def latest_followup(session: AsyncSession, invoice_id: UUID) -> tuple[Followup, list[FollowupStep]] | None:
    """The invoice's current follow-up (or its last one) with the steps it ran; None if it was
    never chased (404 when the invoice does not exist)."""
    await _invoice(session, invoice_id)
    followup = await session.scalar(
        select(Followup)
        .where(Followup.invoice_id == invoice_id)
        .order_by((Followup.status == "active").desc(), Followup.created_at.desc(), Followup.id.desc())
        .limit(1)
    )
    if followup is None:
        return None
    steps = await session.scalars(
        select(FollowupStep).where(FollowupStep.followup_id == followup.id).order_by(FollowupStep.step)
    )
    return followup, list(steps)
