"""Job declarations. Declaring a job does not touch a broker: `build_broker` binds them per process,
so importing a domain's actors never creates a default broker by accident."""

from __future__ import annotations

import functools
import inspect
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from spotless.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class LocalTime:
    """A schedule at a wall-clock time in each organisation's own zone: every day (`daily`) or
    on one weekday (`weekly`, 0 = Monday). Declared here so a job says when it runs in one place;
    the scheduler refuses it until the first job that needs it builds the per-organisation run."""

    at: time
    weekday: int | None = None


def daily(at: time) -> LocalTime:
    return LocalTime(at=at)


def weekly(weekday: int, at: time) -> LocalTime:
    if not 0 <= weekday <= 6:
        raise ValueError("weekday is 0 (Monday) to 6 (Sunday)")
    return LocalTime(at=at, weekday=weekday)


# A fixed interval, or one read from the settings (e.g. JOB_TICK_INTERVAL_SECONDS).
Every = timedelta | Callable[["Settings"], timedelta]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Any]
    queue: str = DEFAULT_QUEUE
    max_retries: int = 10
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 15 * 60_000
    time_limit_ms: int = 5 * 60_000
    max_age_ms: int | None = 24 * 3_600_000
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    every: Every | None = None
    at: LocalTime | None = None


JOBS: dict[str, JobSpec] = {}


def encode_argument(value: Any) -> Any:
    """What a job argument becomes in the outbox and the broker: JSON."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value


def _decoder(hint: Any) -> Callable[[str], Any] | None:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if option is uuid.UUID:
            return uuid.UUID
        if option is datetime:
            return datetime.fromisoformat
        if option is date:
            return date.fromisoformat
        if option is time:
            return time.fromisoformat
    return None


def decoding(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` taking its declared types (UUID, date, datetime) from the JSON strings a message carries.

    Per message this costs a dictionary look-up per argument, and nothing for a job with no typed
    argument (binding the call to the signature did, once per message)."""
    signature = inspect.signature(fn)
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    by_keyword = {
        p.name
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    resolved: list[tuple[list[Callable[[str], Any] | None], dict[str, Callable[[str], Any]]]] = []

    def decoders() -> tuple[list[Callable[[str], Any] | None], dict[str, Callable[[str], Any]]]:
        if not resolved:
            hints = typing.get_type_hints(fn)  # resolved on first run: the module is fully imported by then
            found = {name: _decoder(hints.get(name)) for name in signature.parameters}
            resolved.append(
                (
                    [found[name] for name in positional],
                    {name: d for name, d in found.items() if d is not None and name in by_keyword},
                )
            )
        return resolved[0]

    def decode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        by_position, by_name = decoders()
        if args and any(by_position):
            args = (
                tuple(
                    to_value(value) if to_value is not None and isinstance(value, str) else value
                    for value, to_value in zip(args, by_position, strict=False)
                )
                + args[len(by_position) :]
            )
        if kwargs and by_name:
            kwargs = {
                name: by_name[name](value) if name in by_name and isinstance(value, str) else value
                for name, value in kwargs.items()
            }
        return args, kwargs

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = decode(args, kwargs)
            return await fn(*args, **kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = decode(args, kwargs)
        return fn(*args, **kwargs)

    return run


class Job(Generic[P, R]):
    """A declared job's handle. `handle.enqueue(session, org_id, user_id=...)` requests it in the
    caller's transaction, type-checked against the job's own signature, with ids, dates and
    datetimes encoded; arguments keep their form (positional ones travel in `args`, keywords in
    `kwargs`, as the low-level `enqueue` writes them). Calling the handle runs the job here and now
    (tests, `workers.run`)."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self._run = decoding(spec.fn)
        functools.update_wrapper(self, spec.fn)

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return typing.cast(R, self._run(*args, **kwargs))

    def enqueue(self, session: AsyncSession | Session, /, *args: P.args, **kwargs: P.kwargs) -> uuid.UUID:
        from spotless.lib.jobs.outbox import enqueue  # outbox imports this module

        encoded = {key: encode_argument(value) for key, value in kwargs.items()}
        return enqueue(session, self.spec.name, *[encode_argument(a) for a in args], **encoded)


def job(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = 10,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 15 * 60_000,
    time_limit_ms: int = 5 * 60_000,
    max_age_ms: int | None = 24 * 3_600_000,
    aliases: tuple[str, ...] = (),
    every: Every | None = None,
    at: LocalTime | None = None,
    throws: tuple[type[BaseException], ...] = (),
) -> Callable[[Callable[P, R]], Job[P, R]]:
    """Declare an idempotent job named `domain.verb`; it takes ids and opens its own session.

    `every=` (or `at=daily(...)`/`weekly(...)`) makes it periodic: the scheduler discovers it here
    and sends `fn(slot=<iso>)` once per slot cluster-wide, so a periodic job takes `slot`.

    `throws`: exceptions that end the message at once in the dead letters (no retry): the job has
    recorded why and given up."""

    def decorate(fn: Callable[P, R]) -> Job[P, R]:
        if name in JOBS and JOBS[name].fn is not fn:
            raise ValueError(f"job {name!r} is declared twice")
        if (every is not None or at is not None) and "slot" not in inspect.signature(fn).parameters:
            raise ValueError(f"periodic job {name!r} must take `slot`")
        JOBS[name] = JobSpec(
            name=name,
            fn=fn,
            queue=queue,
            max_retries=max_retries,
            min_backoff_ms=min_backoff_ms,
            max_backoff_ms=max_backoff_ms,
            time_limit_ms=time_limit_ms,
            max_age_ms=max_age_ms,
            aliases=aliases,
            every=every,
            at=at,
            options={"throws": throws} if throws else {},
        )
        for alias in aliases:
            if ALIASES.get(alias, name) != name:
                raise ValueError(f"alias {alias!r} already names {ALIASES[alias]!r}")
            ALIASES[alias] = name
        return Job(JOBS[name])

    return decorate


# The operations guides' names (`python -m app.jobs.run --job gcal-sync --once`) -> our `domain.verb`.
# Jobs that exist declare theirs (`job(..., aliases=...)`); these belong to domains not built yet.
ALIASES: dict[str, str] = {}
NOT_BUILT_YET: dict[str, str] = {
    "export-dead-letter": "the exports domain (dead export retries)",
}


class UnknownJob(LookupError):
    pass


class JobNotBuiltYet(LookupError):
    pass


def resolve_job(name: str) -> JobSpec:
    """A job by its `domain.verb` name or an operations-guide alias (`storage_janitor` spelled
    with either separator). Raises JobNotBuiltYet for a guide's job whose domain comes later."""
    key = name if name in JOBS or name in ALIASES else name.replace("_", "-")
    if key in JOBS:
        return JOBS[key]
    if key in ALIASES:
        return JOBS[ALIASES[key]]
    if key in NOT_BUILT_YET:
        raise JobNotBuiltYet(f"job {name!r} is not built yet: it belongs to {NOT_BUILT_YET[key]}")
    raise UnknownJob(f"unknown job {name!r}; known: {', '.join(sorted([*JOBS, *ALIASES]))}")


def get_job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}") from None


@dataclass(frozen=True)
class Periodic:
    job_name: str
    every_seconds: int


def discover_schedule(settings: Settings) -> list[Periodic]:
    """Every periodic job's slot length, from the declarations (the one place schedules live)."""
    entries: list[Periodic] = []
    for spec in sorted(JOBS.values(), key=lambda s: s.name):
        if spec.at is not None:
            raise NotImplementedError(f"{spec.name}: local-time schedules are declared but not run yet")
        if spec.every is None:
            continue
        every = spec.every if isinstance(spec.every, timedelta) else spec.every(settings)
        entries.append(Periodic(job_name=spec.name, every_seconds=max(int(every.total_seconds()), 1)))
    return entries
