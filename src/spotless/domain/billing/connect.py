"""Stripe Connect: each organisation is paid into its own Stripe (Express) account.

- `connect_account`: creates the organisation's account once (idempotency key from the org id, a
  row per organisation; a second click reuses it) and answers a fresh onboarding link (a bearer
  URL: answered, never stored or logged).
- `account_status`: the account as Stripe sees it now (re-read on every call, saved), or the saved
  state with `synced=False` while Stripe is unreachable.
- `apply_account(session, org_id, account_obj)`: saves an account object's flags and status; the
  `account.updated` webhook handler (helper "hooks") calls it with the object it re-read.
- `payable_account`: the account card payments go to, or 409 when it cannot take charges yet.

Metadata on the account (and on every object we create) carries `org_id`, so an event from Stripe
maps back to its organisation before any organisation scope is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.billing.models import StripeAccount
from spotless.domain.billing.stripe_client import PaymentsUnavailable, stripe_gateway
from spotless.domain.identity.public import Principal
from spotless.lib.errors import conflict
from spotless.lib.request_context import current_request_id
from spotless.settings import StripeSettings


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a Stripe object or of its plain dict (webhook payloads)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def account_state(account_obj: Any) -> str:
    """pending (onboarding not finished) / active (charges and payouts) / restricted (Stripe wants
    more, or holds payouts) / disabled (Stripe rejected the account)."""
    requirements = _field(account_obj, "requirements") or {}
    reason = str(_field(requirements, "disabled_reason") or "")
    if reason.startswith("rejected"):
        return "disabled"
    charges, payouts = bool(_field(account_obj, "charges_enabled")), bool(_field(account_obj, "payouts_enabled"))
    if charges and payouts:
        return "active"
    if not _field(account_obj, "details_submitted"):
        return "pending"
    return "restricted"


def requirements_due(account_obj: Any) -> list[str]:
    requirements = _field(account_obj, "requirements") or {}
    return [str(item) for item in (_field(requirements, "currently_due") or [])]


async def get_account(session: AsyncSession, org_id: UUID, *, for_update: bool = False) -> StripeAccount | None:
    stmt = select(StripeAccount).where(StripeAccount.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt.execution_options(populate_existing=True))


async def apply_account(session: AsyncSession, org_id: UUID, account_obj: Any) -> StripeAccount | None:
    """Save what Stripe says of the organisation's account (flags and derived status). None when
    the organisation has no account, or another one (an event we cannot match)."""
    row = await get_account(session, org_id, for_update=True)
    if row is None or row.account_id != _field(account_obj, "id"):
        return None
    row.charges_enabled = bool(_field(account_obj, "charges_enabled"))
    row.payouts_enabled = bool(_field(account_obj, "payouts_enabled"))
    row.details_submitted = bool(_field(account_obj, "details_submitted"))
    row.status = account_state(account_obj)
    row.updated_at = datetime.now(UTC)
    await session.flush()
    return row


async def _create_account(session: AsyncSession, org_id: UUID, settings: StripeSettings) -> StripeAccount:
    gateway = stripe_gateway(settings)
    params = {
        "type": "express",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"org_id": str(org_id)},
    }
    account = await gateway.post("account", (org_id,), lambda v1, o: v1.accounts.create_async(params, o))
    now = datetime.now(UTC)
    await session.execute(
        insert(StripeAccount)
        .values(
            org_id=org_id,
            account_id=account.id,
            charges_enabled=bool(account.charges_enabled),
            payouts_enabled=bool(account.payouts_enabled),
            details_submitted=bool(account.details_submitted),
            status=account_state(account),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["org_id"])
    )
    row = await get_account(session, org_id, for_update=True)
    assert row is not None
    return row


async def connect_account(
    session: AsyncSession, principal: Principal, settings: StripeSettings
) -> tuple[StripeAccount, str, datetime]:
    """The organisation's account (created on the first call) and a new onboarding link for it:
    (row, url, link expiry)."""
    org_id = principal.org_id
    row = await get_account(session, org_id, for_update=True)
    created = row is None
    if row is None:
        row = await _create_account(session, org_id, settings)
    gateway = stripe_gateway(settings)
    params = {
        "account": row.account_id,
        "refresh_url": settings.connect_refresh_url,
        "return_url": settings.connect_return_url,
        "type": "account_onboarding",
    }
    # One link per request (a link works once): retries of this request reuse it.
    link = await gateway.post(
        "account_link",
        (org_id, current_request_id() or datetime.now(UTC).isoformat()),
        lambda v1, o: v1.account_links.create_async(params, o),
    )
    if created:
        record_audit(
            session,
            principal,
            "billing.stripe_account.create",
            "stripe_account",
            org_id,
            after={"account_id": row.account_id, "status": row.status},
        )
    record_audit(session, principal, "billing.stripe_account.onboarding_link", "stripe_account", org_id)
    return row, str(link.url), datetime.fromtimestamp(int(link.expires_at), UTC)


async def account_status(
    session: AsyncSession, org_id: UUID, settings: StripeSettings
) -> tuple[StripeAccount | None, list[str], bool]:
    """(row, requirements due, synced): re-read from Stripe and saved; the saved row with
    synced=False while Stripe is unreachable."""
    row = await get_account(session, org_id)
    if row is None:
        return None, [], True
    gateway = stripe_gateway(settings)
    account_id = row.account_id
    try:
        account = await gateway.get(lambda v1, o: v1.accounts.retrieve_async(account_id, options=o), op="account")
    except PaymentsUnavailable:
        return row, [], False
    updated = await apply_account(session, org_id, account)
    return updated or row, requirements_due(account), True


async def payable_account(session: AsyncSession, org_id: UUID, settings: StripeSettings | None = None) -> StripeAccount:
    """The connected account that takes this organisation's card payments (409 otherwise). With
    `settings`, an account not yet enabled here is re-read from Stripe first (its `account.updated`
    may not have arrived yet)."""
    row = await get_account(session, org_id)
    if row is None:
        raise conflict("payments-not-enabled", "Card payments are not set up: connect a Stripe account first.")
    if not row.charges_enabled and settings is not None:  # Stripe unreachable: 503, not a wrong 409
        account_id = row.account_id
        account = await stripe_gateway(settings).get(
            lambda v1, o: v1.accounts.retrieve_async(account_id, options=o), op="account"
        )
        row = await apply_account(session, org_id, account) or row
    if not row.charges_enabled:
        raise conflict(
            "payments-not-enabled",
            "The organisation's Stripe account cannot take card payments yet: finish its onboarding.",
            account_status=row.status,
        )
    return row
