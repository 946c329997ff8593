"""argon2id hashing (off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import os
import secrets
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from spotless.lib.errors import Problem
from spotless.settings import AuthSettings

T = TypeVar("T")
MAX_LENGTH = 128  # argon2 cost does not grow with length, but a cap keeps bodies and memory sane

# The most used passwords (from public breach corpora); a policy that allows these is no policy.
COMMON_PASSWORDS = frozenset(
    [
        "123456",
        "123456789",
        "12345678",
        "password",
        "qwerty123",
        "qwerty1",
        "111111",
        "12345",
        "secret",
        "123123",
        "1234567890",
        "1234567",
        "000000",
        "qwerty",
        "abc123",
        "password1",
        "iloveyou",
        "1q2w3e4r",
        "123321",
        "dragon",
        "monkey",
        "654321",
        "666666",
        "qwertyuiop",
        "123qwe",
        "1qaz2wsx",
        "football",
        "baseball",
        "welcome",
        "welcome1",
        "admin",
        "admin123",
        "letmein",
        "sunshine",
        "princess",
        "master",
        "login",
        "passw0rd",
        "password123",
        "password12",
        "trustno1",
        "starwars",
        "superman",
        "michael",
        "shadow",
        "ashley",
        "jennifer",
        "hunter2",
        "zaq12wsx",
        "1qazxsw2",
        "aa123456",
        "qazwsx",
        "7777777",
        "121212",
        "88888888",
        "987654321",
        "11111111",
        "00000000",
        "changeme",
        "changeme123",
        "cleaning",
        "cleaning123",
        "spotless",
        "spotless123",
        "qwer1234",
        "asdfghjkl",
        "asdfgh",
        "1q2w3e4r5t",
        "1q2w3e",
        "123654",
        "a123456",
        "q1w2e3r4",
        "q1w2e3r4t5",
        "google",
        "computer",
        "internet",
        "whatever",
        "freedom",
        "charlie",
        "jordan23",
        "pokemon",
        "liverpool",
        "chelsea",
        "arsenal",
        "batman",
        "tigger",
        "hello123",
        "hello1234",
        "summer2024",
        "winter2024",
        "spring2024",
        "autumn2024",
        "summer2025",
        "winter2025",
        "password2024",
        "password2025",
        "p@ssw0rd",
        "p@ssword",
        "pa55word",
        "administrator",
        "1234qwer",
        "abcd1234",
        "abcdef",
        "abcdefg",
        "abcdefgh",
        "abcdefghij",
        "0987654321",
        "1111111111",
        "123456789a",
        "123456789q",
        "12345678910",
        "iloveyou1",
        "loveyou",
        "lovely",
        "123abc",
        "abc12345",
        "qwerty12345",
    ]
)

_TEMP_ALPHABET = string.ascii_letters + string.digits


_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None


async def _run(fn: Callable[..., T], *args: object) -> T:
    """argon2 runs in a pool of its own, one thread per CPU: it bounds the memory argon2 takes
    (memory cost x threads) and leaves the default executor free for everything else."""
    global _executor, _executor_pid
    if _executor is None or _executor_pid != os.getpid():  # built per process (after fork)
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")
        _executor_pid = os.getpid()
    return await asyncio.get_running_loop().run_in_executor(_executor, fn, *args)


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def hasher(settings: AuthSettings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


async def hash_password(settings: AuthSettings, password: str) -> str:
    return await _run(hasher(settings).hash, password)


def _verify(ph: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return ph.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(settings: AuthSettings, stored: str | None, password: str) -> bool:
    """Constant work whether or not the account exists: a missing hash is checked against a dummy."""
    ph = hasher(settings)
    target = stored or _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    ok = await _run(_verify, ph, target, password[:MAX_LENGTH])
    return ok and stored is not None


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def needs_rehash(settings: AuthSettings, stored: str) -> bool:
    try:
        return hasher(settings).check_needs_rehash(stored)
    except InvalidHashError:
        return True


def policy_violation(settings: AuthSettings, password: str, *, email: str | None = None) -> str | None:
    """None when acceptable, else a message the user can act on."""
    if len(password) < settings.password_min_length:
        return f"Use at least {settings.password_min_length} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        return "This password is too common or too easy to guess; choose another."
    if email and (lowered == email.lower() or lowered == email.split("@", 1)[0].lower()):
        return "The password must not be your email address."
    return None


def enforce_policy(settings: AuthSettings, password: str, *, email: str | None = None, field: str = "password") -> None:
    message = policy_violation(settings, password, email=email)
    if message:
        raise Problem(
            400,
            "weak-password",
            "The password does not meet the policy",
            message,
            errors=[{"field": field, "message": message}],
        )


def temporary_password(length: int = 16) -> str:
    """Random, shown once; the user must replace it at first sign-in."""
    while True:
        candidate = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate
