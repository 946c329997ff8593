"""Domain events on the jobs outbox.

A context declares what happened to it as a frozen `Event` (ids and the few facts a subscriber
needs, never ORM objects) in its own `events.py`; another context reacts by declaring a
subscriber beside its own jobs (`@subscriber(BookingCompleted, name="system.count_booking")`).

`emit(session, event)` writes one `job_outbox` row per subscriber in the caller's transaction:
- a rollback (or a rolled-back savepoint around the emit) discards them: nothing is emitted;
- after commit each row is handed to the broker, or by the scheduler's outbox sweep when Redis was
  down at commit time, so every subscriber hears of every committed event;
- each subscriber is its own message with its own retries and dead letter: one failing never holds
  back another.

Delivery is at least once (a worker lost mid-message runs it again), so a subscriber makes its
effect idempotent on `event_id` (same id for every subscriber of one emit): `first_delivery` is the
cheap way when the effect itself cannot be keyed."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from spotless.lib.jobs.outbox import enqueue
from spotless.lib.jobs.registry import job


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every domain event. Its name is `<context>.<ClassName>`, taken from the module it
    is declared in (`spotless.domain.<context>.events`): stable, and what the outbox rows carry."""

    event_name: ClassVar[str]
    # A shared base of several events (their facts in common) sets this True in its own body.
    abstract_event: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract_event", False):
            return
        parts = cls.__module__.split(".")
        context = parts[-2] if len(parts) >= 2 and parts[-1] == "events" else parts[-1]
        cls.event_name = f"{context}.{cls.__name__}"
        known = EVENT_TYPES.get(cls.event_name)
        if known is not None and known is not cls:
            raise ValueError(f"event {cls.event_name!r} is declared twice")
        EVENT_TYPES[cls.event_name] = cls


E = TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {}
# event name -> job names of its subscribers, in declaration order
SUBSCRIBERS: dict[str, list[str]] = {}
_loaded = False


def subscribe(event_type: type[Event], job_name: str) -> None:
    """`job_name` (a declared job taking `(event_name, event_id, payload)`) hears `event_type`."""
    names = SUBSCRIBERS.setdefault(event_type.event_name, [])
    if job_name not in names:
        names.append(job_name)


def subscriber(
    *event_types: type[E], name: str, **job_options: Any
) -> Callable[[Callable[[E, str], Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Declare a job named `name` that receives each of `event_types` decoded: `fn(event, event_id)`.
    `job_options` are the job's (queue, max_retries, time_limit_ms, ...)."""

    def decorate(fn: Callable[[E, str], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        # The subscriber's name and docstring, but this function's own signature and annotations:
        # the job binds and decodes its arguments by them.
        @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        async def handle(event_name: str, event_id: str, payload: dict[str, Any]) -> None:
            await fn(decode(event_name, payload), event_id)  # type: ignore[arg-type]

        del handle.__wrapped__  # else inspect.signature() would report the subscriber's
        job(name, **job_options)(handle)
        for event_type in event_types:
            subscribe(event_type, name)
        return handle

    return decorate


def decode(event_name: str, payload: dict[str, Any]) -> Event:
    try:
        event_type = EVENT_TYPES[event_name]
    except KeyError:
        raise KeyError(f"unknown event {event_name!r}") from None
    return msgspec.convert(payload, event_type, strict=False)


def mark_subscriptions_loaded() -> None:
    """Called by the domain registry once every context's subscribers are imported."""
    global _loaded
    _loaded = True


def emit(session: AsyncSession | Session, event: Event) -> list[uuid.UUID]:
    """Record `event` for each of its subscribers in the current transaction; returns the outbox
    row ids. An event nobody listens to writes nothing."""
    if not _loaded:
        # Without the subscribers imported an emit would silently reach nobody.
        raise RuntimeError("emit() before the subscribers were imported (spotless.domain.registry.import_jobs)")
    names = SUBSCRIBERS.get(event.event_name, [])
    if not names:
        return []
    event_id = str(uuid7())
    payload = msgspec.to_builtins(event)
    return [enqueue(session, name, event.event_name, event_id, payload) for name in names]


def subscription_map() -> dict[str, list[str]]:
    """Every declared event (imported) -> its subscribers; an event nobody hears maps to []."""
    return {name: list(SUBSCRIBERS.get(name, [])) for name in sorted(EVENT_TYPES)}


async def first_delivery(
    redis: Redis, namespace: str, subscriber_name: str, event_id: str, ttl_seconds: int = 7 * 24 * 3600
) -> bool:
    """True the first time `subscriber_name` sees `event_id` (a redelivery then answers False).
    Marked before the effect: for effects where a rare loss beats a double (a counter)."""
    return bool(await redis.set(f"{namespace}:event-seen:{subscriber_name}:{event_id}", "1", nx=True, ex=ttl_seconds))


__all__ = [
    "EVENT_TYPES",
    "SUBSCRIBERS",
    "Event",
    "decode",
    "emit",
    "first_delivery",
    "mark_subscriptions_loaded",
    "subscribe",
    "subscriber",
    "subscription_map",
]
