"""Dead letters: `python -m workers.dlq list` and `python -m workers.dlq replay [REDIS_ID ...]`."""

from __future__ import annotations

import argparse
import json
import sys

from spotless.domain import registry
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.dlq import list_dead_letters, replay_dead_letters
from spotless.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list")
    listing.add_argument("--limit", type=int, default=100)
    replay = sub.add_parser("replay")
    replay.add_argument("ids", nargs="*", help="redis ids from `list`; none replays everything")
    args = parser.parse_args(argv)
    registry.import_jobs()
    broker = build_broker(load_settings())
    try:
        if args.command == "list":
            for entry in list_dead_letters(broker, args.limit):
                print(json.dumps(entry, default=str))
        else:
            print(f"replayed {replay_dead_letters(broker, args.ids or None)}")
    finally:
        broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
