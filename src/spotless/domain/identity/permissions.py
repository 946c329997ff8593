"""Permission keys and the roles that bundle them.

Every route declares the one key it needs (`opt={"permission": "bookings.edit"}`) or is listed as
public (`opt={"public": True}`); `tests/integration/test_route_permissions.py` fails on a route with
neither. Roles, highest rank first:

- ``owner`` (rank 50): every key. Only an owner can make or demote an owner; an organisation
  always keeps at least one active owner.
- ``admin`` (rank 40): every key. Runs the organisation day to day: people, settings, integrations,
  and the organisation's dead jobs (``jobs.manage``: list and replay them, never another's), its
  retention and its clients' data rights (``privacy.manage``: export or erase a client).
- ``dispatcher`` (rank 30): core.view, bookings.view, bookings.edit, bookings.assign, bookings.status,
  contacts.view, contacts.edit, invoices.view, reports.view, workers.contact.view. Plans and runs the
  calendar.
- ``finance`` (rank 30): core.view, bookings.view, contacts.view, invoices.view, invoices.edit,
  invoices.send, payments.record, finance.view, finance.manage, pricing.manage, exports.run,
  reports.view, workers.contact.view, workers.pay.view. Bills, reconciles and pays; does not move
  bookings.
- ``viewer`` (rank 20): core.view, bookings.view, contacts.view, invoices.view, reports.view,
  workers.contact.view. Read only.
- ``worker`` (rank 10): core.view, bookings.view, bookings.status. A cleaner in the field: sees the
  bookings and recurring series they are assigned to (services narrow the queries to their own
  assignments) and moves their jobs through their states. They see their colleagues' names, skills
  and hours, but not their contact or pay details.

`core.view` is held by every role: it is what `/v1/auth/me`, `/v1/org` (read), logout and
change-password need, so any member of an organisation can use them.

Workers' personal details are keys of their own, so an office role can be given them without a
cleaner getting them. Without the key the field is absent from the answer (not null, which would
read as "not set"), and the query never selects it; everyone sees their own worker profile whole:

- ``workers.contact.view``: another worker's phone and email, and the reasons of their time off.
- ``workers.pay.view``: another worker's hourly rate.
"""

from __future__ import annotations

PERMISSIONS: tuple[str, ...] = (
    "core.view",
    "bookings.view",
    "bookings.edit",
    "bookings.assign",
    "bookings.status",
    "contacts.view",
    "contacts.edit",
    "invoices.view",
    "invoices.edit",
    "invoices.send",
    "payments.record",
    "finance.view",
    "finance.manage",
    "pricing.manage",
    "settings.manage",
    "users.manage",
    "exports.run",
    "reports.view",
    "integrations.manage",
    "audit.view",
    # The organisation's dead background jobs and failed exports: list and replay (admins).
    "jobs.manage",
    # A client's data rights (owners and admins): export everything held about them, erase them.
    "privacy.manage",
    # Workers' personal details (see the module docstring).
    "workers.contact.view",
    "workers.pay.view",
)

ROLES: tuple[str, ...] = ("owner", "admin", "dispatcher", "finance", "viewer", "worker")

ROLE_RANK: dict[str, int] = {
    "owner": 50,
    "admin": 40,
    "dispatcher": 30,
    "finance": 30,
    "viewer": 20,
    "worker": 10,
}

_ALL = frozenset(PERMISSIONS)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": _ALL,
    "admin": _ALL,
    "dispatcher": frozenset(
        {
            "core.view",
            "bookings.view",
            "bookings.edit",
            "bookings.assign",
            "bookings.status",
            "contacts.view",
            "contacts.edit",
            "invoices.view",
            "reports.view",
            "workers.contact.view",
        }
    ),
    "finance": frozenset(
        {
            "core.view",
            "bookings.view",
            "contacts.view",
            "invoices.view",
            "invoices.edit",
            "invoices.send",
            "payments.record",
            "finance.view",
            "finance.manage",
            "pricing.manage",
            "exports.run",
            "reports.view",
            "workers.contact.view",
            "workers.pay.view",
        }
    ),
    "viewer": frozenset(
        {"core.view", "bookings.view", "contacts.view", "invoices.view", "reports.view", "workers.contact.view"}
    ),
    "worker": frozenset({"core.view", "bookings.view", "bookings.status"}),
}


def permissions_for(role: str) -> frozenset[str]:
    """Unknown roles get nothing: a role removed from code must not keep its old powers."""
    return ROLE_PERMISSIONS.get(role, frozenset())


def rank(role: str) -> int:
    return ROLE_RANK.get(role, 0)


def can_grant(actor_role: str, role: str) -> bool:
    """An actor may give a role up to their own rank, never above it."""
    return role in ROLE_RANK and rank(role) <= rank(actor_role)
