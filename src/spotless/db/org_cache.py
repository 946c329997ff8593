"""Per-process caches of an organisation's configuration (identity's profile, scheduling's
settings), so a request does not re-read rows that almost never change.

Freshness, by construction:
- **This node, at once.** A change registers `invalidate_local` to run when its transaction commits
  (an after-commit hook, awaited before the response of the request that made it). A read that began
  before the invalidation never stores what it read (`token`), so an old row cannot slip back in.
- **Every other node, on its next request for that organisation.** The change also writes a new
  value to the organisation's version key in Redis (`version_key`). Every authenticated request
  already reads its session from Redis; the session check reads this key in the same command
  (MGET, no extra round trip) and records it for the request (`observe`). An entry cached under
  another version is read again.
- **At most `MAX_AGE_SECONDS` in any case.** That bounds a version write that was lost (Redis down at
  that moment), requests served while Redis is out (the session check then goes to Postgres and
  observes no version), and changes made outside the API (SQL by an operator: also bump the key,
  `SET <ns>:org:<id>:config <anything>`, or wait this long).

Tenant meaning: entries are keyed by organisation id and the request path looks them up only by the
authenticated principal's organisation, so a cached row is served only to a member of its
organisation, as RLS would have scoped the read.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Generic, TypeVar
from uuid import UUID

MAX_AGE_SECONDS = 30.0
MAX_ENTRIES = 10_000

T = TypeVar("T")
_UNKNOWN = b"\x00unknown"

# (organisation, its version as the request's session check read it from Redis; None: no key)
_observed: ContextVar[tuple[UUID, bytes | str | None] | None] = ContextVar("org_config_version", default=None)


def version_key(namespace: str, org_id: UUID | str) -> str:
    return f"{namespace}:org:{org_id}:config"


def observe(org_id: UUID, version: bytes | str | None) -> None:
    """The organisation's config version as this request read it (the session check calls this)."""
    _observed.set((org_id, version))


def observe_unknown(org_id: UUID) -> None:
    """Redis could not be asked this request: entries are trusted for their age only."""
    _observed.set((org_id, _UNKNOWN))


def on_request_path(org_id: UUID) -> bool:
    """True when this request's session check read `org_id`'s version from Redis: a cache that
    must not serve a job (which observes no version, so would trust entries for their age alone)
    reads through only then."""
    seen = _observed.get()
    return seen is not None and seen[0] == org_id and seen[1] != _UNKNOWN


def _version(org_id: UUID) -> bytes | str | None:
    seen = _observed.get()
    if seen is None or seen[0] != org_id:
        return _UNKNOWN
    return seen[1]


class OrgCache(Generic[T]):
    def __init__(self, max_age: float = MAX_AGE_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: OrderedDict[UUID, tuple[T, bytes | str | None, float]] = OrderedDict()
        self._invalidations = 0
        _CACHES.append(self)

    def get(self, org_id: UUID) -> T | None:
        entry = self._entries.get(org_id)
        if entry is None:
            return None
        value, version, at = entry
        observed = _version(org_id)
        if time.monotonic() - at > self.max_age or (observed != _UNKNOWN and observed != version):
            del self._entries[org_id]
            return None
        self._entries.move_to_end(org_id)
        return value

    def token(self) -> int:
        """Take before reading the rows; `put` stores only if nothing was invalidated meanwhile."""
        return self._invalidations

    def put(self, org_id: UUID, value: T, token: int) -> None:
        if token != self._invalidations:
            return
        self._entries[org_id] = (value, _version(org_id), time.monotonic())
        self._entries.move_to_end(org_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, org_id: UUID) -> None:
        self._invalidations += 1
        self._entries.pop(org_id, None)

    def clear(self) -> None:
        self._invalidations += 1
        self._entries.clear()


_CACHES: list[OrgCache[Any]] = []


def invalidate_local(org_id: UUID) -> None:
    """Drop every cached piece of this organisation's configuration in this process."""
    for cache in _CACHES:
        cache.invalidate(org_id)


__all__ = [
    "MAX_AGE_SECONDS",
    "OrgCache",
    "invalidate_local",
    "observe",
    "observe_unknown",
    "on_request_path",
    "version_key",
]
