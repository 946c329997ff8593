"""The request's unit of work: one commit mechanism for the whole API, and the one way to run
something after a transaction commits (or to undo something when it does not).

**Requests.** `UnitOfWorkMiddleware` wraps every route handler (innermost, inside the principal's
RLS scope). When the handler's response starts, before any byte of it is sent:
- status < 400: the request's session is committed; only when the commit succeeded is the
  response let through. A failed commit replaces it with a problem (409 for a constraint, such as a
  deferred trigger; 503 with Retry-After for a lost connection or a timeout), logged at ERROR and
  counted in `db_commit_failures_total{reason}`. Nothing is told 2xx that was not stored.
- status >= 400: the session is rolled back, unless the handler said `commit_despite_error`
  (a refused refresh token revokes its session, and that revocation must stay).
- a serialization failure or deadlock (40001/40P01), during the handler or at commit, reruns the
  whole handler once on a fresh transaction (the body Litestar read is cached in the scope);
  a second one answers 409.
- a dead pooled connection (there is no pre-ping: a server restart, a failover or an idle timeout
  shows at a transaction's BEGIN, see db/dialect.py) reruns the handler once on a fresh
  connection, provided nothing was committed in this attempt; otherwise it answers 503 as before.
A request that never used the database costs nothing here; one whose session never began a
transaction costs no round trip.

**Hooks.** `after_commit(session, fn, *args)` runs `fn` once the *outermost* transaction commits;
`after_rollback` when it ends any other way. `collect_after_commit(session, fn, item)` batches:
`fn(items)` runs once with every item of the transaction. A hook registered inside a savepoint
belongs to it: released, it joins the enclosing transaction; rolled back, its after-commit hooks
are dropped (the work they followed is gone) and its after-rollback hooks run. So one conflicting
occurrence (a savepoint rolled back) no longer discards the whole transaction's jobs, counts and
session publications. Hooks may be coroutine functions: under `commit()`/`rollback()` here (the
middleware uses them) they are awaited before the call returns, so before the response is sent;
after a plain `session.commit()` (jobs) they are scheduled on the running loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from spotless.db.dialect import Attempt, current_attempt
from spotless.lib.errors import RETRY_SCOPE_KEY, database_problem, db_failure_reason, is_retryable, render_problem
from spotless.lib.metrics import DB_COMMIT_FAILURES

logger = logging.getLogger("spotless.db.unit_of_work")

_HOOKS = "uow_hooks"
_RELEASED = "uow_released_savepoint"
_ROOT_COMMITTED = "uow_root_committed"
_DRIVEN = "uow_driven"
_AWAITING = "uow_awaiting"
_COMMIT_ON_ERROR = "uow_commit_on_error"
MAX_ATTEMPTS = 2


@dataclass
class _Hook:
    scope: SessionTransaction | None  # the savepoint it was registered in; None: the outermost transaction
    on_commit: bool
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    batched: bool = False


def _sync(session: AsyncSession | Session) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


def _register(
    session: AsyncSession | Session, hook_on_commit: bool, fn: Callable[..., Any], args: tuple[Any, ...], batched: bool
) -> None:
    sync = _sync(session)
    hook = _Hook(sync.get_nested_transaction(), hook_on_commit, fn, args, batched)
    sync.info.setdefault(_HOOKS, []).append(hook)


def after_commit(session: AsyncSession | Session, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` once the outermost transaction has committed (never if it does not)."""
    _register(session, True, fn, args, False)


def after_rollback(session: AsyncSession | Session, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` if the outermost transaction ends without committing."""
    _register(session, False, fn, args, False)


def collect_after_commit(session: AsyncSession | Session, fn: Callable[[list[Any]], Any], item: Any) -> None:
    """Add `item` to this transaction's batch for `fn`; `fn(items)` runs once after commit."""
    _register(session, True, fn, (item,), True)


def pending_items(session: AsyncSession | Session, fn: Callable[[list[Any]], Any]) -> list[Any]:
    """Items collected for `fn` that still wait for the commit (to avoid adding one twice)."""
    hooks: list[_Hook] = _sync(session).info.get(_HOOKS, [])
    return [h.args[0] for h in hooks if h.batched and h.fn == fn]


def commit_despite_error(session: AsyncSession | Session) -> None:
    """This request answers an error but what it wrote must stay (e.g. revoking a session whose
    refresh token was reused). The unit of work commits it; if that commit fails, the answer
    becomes the commit's problem instead."""
    _sync(session).info[_COMMIT_ON_ERROR] = True


# --- running hooks ---------------------------------------------------------------------------


def _run(session: Session, hooks: list[_Hook], committed: bool) -> None:
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    batches: dict[Any, list[Any]] = {}
    for hook in hooks:
        if hook.on_commit is not committed:
            continue
        if hook.batched:
            if hook.fn not in batches:
                batches[hook.fn] = []
                calls.append((hook.fn, (batches[hook.fn],)))
            batches[hook.fn].append(hook.args[0])
        else:
            calls.append((hook.fn, hook.args))
    for fn, args in calls:
        try:
            result = fn(*args)
        except Exception:
            logger.exception("after-%s hook %r failed", "commit" if committed else "rollback", fn)
            continue
        if inspect.isawaitable(result):
            _defer(session, result)


def _defer(session: Session, awaitable: Any) -> None:
    if session.info.get(_DRIVEN):
        session.info.setdefault(_AWAITING, []).append(awaitable)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        logger.error("async hook %r dropped: no running event loop", awaitable)
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        return
    task = asyncio.ensure_future(_guarded(awaitable))
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Future[Any]] = set()


async def _guarded(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("async after-transaction hook failed")


def _end_outermost(session: Session, committed: bool) -> None:
    hooks: list[_Hook] = session.info.pop(_HOOKS, [])
    session.info.pop(_COMMIT_ON_ERROR, None)
    if hooks:
        _run(session, hooks, committed)


@event.listens_for(Session, "after_commit")
def _mark_commit(session: Session) -> None:
    # Fired for a savepoint release as well as for the real commit; tell them apart.
    nested = session.get_nested_transaction()
    if nested is not None:
        session.info[_RELEASED] = nested
    else:
        session.info[_ROOT_COMMITTED] = True


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        released = session.info.get(_RELEASED) is transaction
        if released:
            session.info.pop(_RELEASED, None)
        hooks: list[_Hook] = session.info.get(_HOOKS, [])
        mine = [h for h in hooks if h.scope is transaction]
        if not mine:
            return
        parent = transaction.parent
        enclosing = parent if parent is not None and parent.nested else None
        if released:
            for hook in mine:
                hook.scope = enclosing
            return
        session.info[_HOOKS] = [h for h in hooks if h.scope is not transaction]
        _run(session, mine, committed=False)
    elif transaction.parent is None:
        _end_outermost(session, bool(session.info.pop(_ROOT_COMMITTED, False)))


async def _await_deferred(session: Session) -> None:
    for awaitable in session.info.pop(_AWAITING, []):
        await _guarded(awaitable)


# Writes a module does itself right before the request's commit, instead of leaving its new rows
# to the commit's flush (the outbox: one INSERT for all of a transaction's jobs).
_BEFORE_COMMIT: list[Callable[[AsyncSession], Awaitable[None]]] = []


def write_before_commit(fn: Callable[[AsyncSession], Awaitable[None]]) -> Callable[[AsyncSession], Awaitable[None]]:
    """Register `fn(session)` to run in `commit()` before the COMMIT (a failure fails the commit).
    A plain `session.commit()` (jobs, tests) does not run it: what it would write is flushed then."""
    if fn not in _BEFORE_COMMIT:
        _BEFORE_COMMIT.append(fn)
    return fn


async def commit(session: AsyncSession) -> None:
    """Commit and run the after-commit hooks (async ones awaited). Without a transaction there is
    nothing to send: the hooks run without a round trip. Raises what the commit raised."""
    sync = session.sync_session
    sync.info[_DRIVEN] = True
    try:
        for write in _BEFORE_COMMIT:
            await write(session)
        if session.in_transaction():
            await session.commit()
        else:
            _end_outermost(sync, committed=True)
    finally:
        sync.info.pop(_DRIVEN, None)
    await _await_deferred(sync)


async def rollback(session: AsyncSession) -> None:
    """Roll back and run the after-rollback hooks; never raises (the connection may be gone)."""
    sync = session.sync_session
    sync.info[_DRIVEN] = True
    try:
        if session.in_transaction():
            await session.rollback()
    except Exception:
        logger.warning("rollback failed (connection lost?)", exc_info=True)
    finally:
        _end_outermost(sync, committed=False)  # no-op when the rollback already ended it
        sync.info.pop(_DRIVEN, None)
    await _await_deferred(sync)


# --- the request middleware ------------------------------------------------------------------


def request_transaction(session: AsyncSession) -> bool:
    """This session's transaction is the outermost one of a request the unit of work drives, which
    rolls it back on any error answer: a statement that fails may abort it without a savepoint."""
    return current_attempt.get() is not None and not session.in_nested_transaction()


class _Retry(Exception):
    """This attempt's answer was withheld: run the handler again."""


class UnitOfWorkMiddleware:
    def __init__(self, app: ASGIApp, session_scope_key: str) -> None:
        self.app = app
        self.session_scope_key = session_scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._attempt(scope, receive, send, last=attempt == MAX_ATTEMPTS)
                return
            except _Retry as retry:
                logger.warning("%s; running the request again", retry, exc_info=False)
                ScopeState.from_scope(scope).response_started = False

    def _session(self, scope: Scope) -> AsyncSession | None:
        return get_aa_scope_state(scope, self.session_scope_key)  # type: ignore[no-any-return]

    async def _discard(self, scope: Scope) -> None:
        session = self._session(scope)
        if session is not None:
            await rollback(session)
            await session.close()
            delete_aa_scope_state(scope, self.session_scope_key)

    async def _attempt(self, scope: Scope, receive: Receive, send: Send, last: bool) -> None:
        withheld = False
        retry = False
        attempt = Attempt()
        token = current_attempt.set(attempt)

        async def gate(message: Message) -> None:
            nonlocal withheld, retry
            if message["type"] == "http.response.start":
                outcome = await self._settle(scope, message["status"], last, attempt)
                if outcome is _RETRY:
                    withheld = retry = True
                    return
                if outcome is not None:
                    withheld = True
                    await outcome(scope, receive, send)
                    return
            elif withheld:
                return  # the body of an answer we replaced
            await send(message)

        try:
            await self.app(scope, receive, gate)
        except BaseException:
            await self._discard(scope)
            raise
        finally:
            current_attempt.reset(token)
        if retry:
            raise _Retry(
                "a pooled connection was dead at BEGIN"
                if attempt.lost_at_begin
                else "serialization failure or deadlock"
            )

    async def _settle(self, scope: Scope, status: int, last: bool, attempt: Attempt) -> Any:
        """Decide the transaction's fate now that the answer's status is known. Returns None to let
        the answer through, _RETRY, or an ASGI app answering the commit's failure instead."""
        last = last or not _replayable(scope)
        asked = scope.pop(RETRY_SCOPE_KEY, False)  # type: ignore[misc]
        if (asked or attempt.rerun_safe) and not last:
            await self._discard(scope)
            return _RETRY
        session = self._session(scope)
        if session is None:
            return None
        sync = session.sync_session
        if status >= 400 and not sync.info.get(_COMMIT_ON_ERROR):
            await rollback(session)
            return None
        try:
            await commit(session)
        except Exception as exc:
            await rollback(session)
            if is_retryable(exc) and not last:
                await session.close()
                delete_aa_scope_state(scope, self.session_scope_key)
                return _RETRY
            reason = db_failure_reason(exc)
            DB_COMMIT_FAILURES.labels(reason=reason).inc()
            logger.error("commit failed (%s); answering a problem instead of %s", reason, status, exc_info=True)
            request: Request[Any, Any, Any] = Request(scope)
            response = render_problem(request, database_problem(exc, at_commit=True))
            return response.to_asgi_response(app=scope["litestar_app"], request=request)
        return None


_RETRY = object()


def _replayable(scope: Scope) -> bool:
    """A rerun needs the body again: Litestar caches what it read in the scope; a body that was
    streamed past is gone, so such a request is not rerun."""
    state = ScopeState.from_scope(scope)
    if value_or_default(state.body, None) is not None:
        return True
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() in (b"", b"0")
        if name == b"transfer-encoding":
            return False
    return True


__all__ = [
    "MAX_ATTEMPTS",
    "UnitOfWorkMiddleware",
    "after_commit",
    "after_rollback",
    "collect_after_commit",
    "commit",
    "commit_despite_error",
    "pending_items",
    "request_transaction",
    "rollback",
]
