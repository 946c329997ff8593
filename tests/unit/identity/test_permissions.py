from spotless.domain.identity.permissions import PERMISSIONS, ROLE_PERMISSIONS, can_grant, permissions_for, rank

REQUIRED_KEYS = {
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
}


def test_the_issue_keys_exist():
    assert set(PERMISSIONS) >= REQUIRED_KEYS
    assert len(PERMISSIONS) == len(set(PERMISSIONS))


def test_ranks_order_the_roles():
    assert rank("owner") > rank("admin") > rank("dispatcher") == rank("finance") > rank("viewer") > rank("worker")


def test_grants_stop_at_the_granters_rank():
    assert can_grant("owner", "owner")
    assert can_grant("admin", "admin") and not can_grant("admin", "owner")
    assert can_grant("dispatcher", "finance") and not can_grant("dispatcher", "admin")
    assert not can_grant("owner", "superuser")


def test_lower_roles_hold_subsets_and_unknown_roles_hold_nothing():
    assert ROLE_PERMISSIONS["viewer"] < ROLE_PERMISSIONS["admin"]
    assert ROLE_PERMISSIONS["worker"] < ROLE_PERMISSIONS["dispatcher"]
    assert "users.manage" not in ROLE_PERMISSIONS["dispatcher"] | ROLE_PERMISSIONS["finance"]
    assert "bookings.edit" not in ROLE_PERMISSIONS["finance"]
    assert "finance.view" not in ROLE_PERMISSIONS["dispatcher"]
    assert permissions_for("ghost") == frozenset()
    # Dead jobs (and their replay) are the admins' only.
    assert {role for role, keys in ROLE_PERMISSIONS.items() if "jobs.manage" in keys} == {"owner", "admin"}
    # A client's data rights (export everything, erase) and the retention settings: the same.
    assert {role for role, keys in ROLE_PERMISSIONS.items() if "privacy.manage" in keys} == {"owner", "admin"}
