import pytest

from spotless.domain.identity import passwords
from spotless.lib.errors import Problem
from spotless.settings import AuthSettings

SETTINGS = AuthSettings(secret_key="x" * 32, argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


@pytest.mark.parametrize(
    "candidate",
    ["short", "password123", "Password123", "qwertyuiop", "aaaaaaaaaaaa", "x" * 200, "jane.doe@example.com"],
)
def test_policy_refuses_weak_passwords(candidate):
    assert passwords.policy_violation(SETTINGS, candidate, email="jane.doe@example.com") is not None
    with pytest.raises(Problem) as raised:
        passwords.enforce_policy(SETTINGS, candidate, email="jane.doe@example.com")
    assert raised.value.type_ == "/problems/weak-password"


def test_policy_accepts_a_passphrase():
    assert passwords.policy_violation(SETTINGS, "correct horse battery staple") is None


async def test_argon2id_hash_and_verify():
    stored = await passwords.hash_password(SETTINGS, "correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify_password(SETTINGS, stored, "correct horse battery staple")
    assert not await passwords.verify_password(SETTINGS, stored, "wrong horse battery staple")
    assert not await passwords.verify_password(SETTINGS, None, "anything at all")  # no account: same work, False
    assert not await passwords.verify_password(SETTINGS, "not-a-hash", "anything at all")


def test_a_cost_change_asks_for_a_rehash():
    stored = passwords.hasher(SETTINGS).hash("some passphrase here")
    stronger = AuthSettings(secret_key="x" * 32, argon2_time_cost=2, argon2_memory_kib=2048, argon2_parallelism=1)
    assert not passwords.needs_rehash(SETTINGS, stored)
    assert passwords.needs_rehash(stronger, stored)


def test_temporary_passwords_are_random_and_mixed():
    seen = {passwords.temporary_password() for _ in range(50)}
    assert len(seen) == 50
    assert all(len(p) == 16 and any(c.isdigit() for c in p) and any(c.isalpha() for c in p) for p in seen)
