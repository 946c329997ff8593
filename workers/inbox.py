"""The inbox of events from outside: `python -m workers.inbox [list]` shows what is not handled yet
(pending or failed), `python -m workers.inbox replay [EVENT_ID ...]` enqueues them again (every
unhandled event when no id is given). Payloads are never printed: they may carry personal data or
tokens; the listing gives their size, and the event itself is in `inbox_events` for whoever may read it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from uuid import UUID

from spotless.domain import registry
from spotless.lib.inbox import list_unhandled, replay
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay
from spotless.lib.jobs.runtime import build_runtime
from spotless.settings import Settings, load_settings

COLUMNS = ("id", "status", "source", "external_id", "type", "received_at", "attempts", "bytes", "last_error")


def _line(values: tuple[object, ...]) -> str:
    return "\t".join("-" if v is None else str(v) for v in values)


async def _list(settings: Settings, limit: int, source: str | None) -> int:
    runtime = build_runtime(settings, application_name="spotless-inbox")
    try:
        async with runtime.session() as session:
            events = await list_unhandled(session, limit=limit, source=source)
    finally:
        await runtime.close()
    print(_line(COLUMNS))
    for e in events:
        error = (e.last_error or "").replace("\n", " ")[:200] or None
        print(
            _line(
                (
                    e.id,
                    e.status,
                    e.source,
                    e.external_id,
                    e.event_type,
                    e.received_at.isoformat(timespec="seconds"),
                    e.attempts,
                    e.payload_bytes,
                    error,
                )
            )
        )
    print(f"{len(events)} unhandled event(s)", file=sys.stderr)
    return 0


async def _replay(settings: Settings, ids: list[UUID]) -> int:
    runtime = build_runtime(settings, application_name="spotless-inbox")
    try:
        async with runtime.session() as session:
            result = await replay(session, ids or None)
        # Committed: hand the jobs to the broker now; if Redis is down the scheduler's sweep does.
        broker = build_broker(settings)
        try:
            delivered = await OutboxRelay(runtime.sessionmaker, broker).relay(ids=result.outbox_ids)
        finally:
            broker.close()
    finally:
        await runtime.close()
    for event_id in result.not_pending:
        print(f"not replayed (handled already, or unknown): {event_id}", file=sys.stderr)
    queued = len(result.event_ids)
    print(f"replayed {queued}" + ("" if delivered == queued else f" ({queued - delivered} wait in the outbox)"))
    return 1 if result.not_pending else 0


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    listing = sub.add_parser("list", help="unhandled events (the default)")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--source", default=None)
    again = sub.add_parser("replay", help="enqueue unhandled events again")
    again.add_argument("ids", nargs="*", type=UUID, help="event ids from `list`; none replays every unhandled one")
    args = parser.parse_args(argv)
    registry.import_jobs()  # the job's declaration (queue, retries) must be known to enqueue it
    settings = settings or load_settings()
    if args.command == "replay":
        return asyncio.run(_replay(settings, args.ids))
    return asyncio.run(_list(settings, getattr(args, "limit", 100), getattr(args, "source", None)))


if __name__ == "__main__":
    sys.exit(main())
