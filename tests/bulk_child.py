"""A bulk launch in its own process, for the kill and lock tests (not a test module).

    python tests/bulk_child.py --url URL --token T --journal J --prefix P --items N

Prints ``READY`` once the session is open (then, with ``--go PATH``, waits for PATH),
``FIRST`` after the first outcome, then
``RESULT {json counts}``; exits 0 when every item has a run, 3 when some have none,
4 on a library error (printed as ``ERROR <type>: <message>``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator

import orjson

from tower_async import Tower, TowerError
from tower_async.orchestration import LaunchSpec, bulk_launch


def specs(prefix: str, items: int, named: bool) -> Iterator[LaunchSpec]:
    for i in range(items):
        yield LaunchSpec(
            "nf-core/rnaseq",
            params={"sample": f"{prefix}-{i:04d}"},
            run_name=f"{prefix}-{i:04d}" if named else None,
        )


def start_signal(path: str | None) -> None:
    """With ``--go PATH``: wait (bounded, 30 s) for the test to create PATH, so that several
    children start launching together."""
    for _ in range(3000):
        if path is None or os.path.exists(path):
            return
        time.sleep(0.01)  # nothing else runs yet
    raise SystemExit(f"no {path} within 30 s")


async def main(args: argparse.Namespace) -> int:
    counts: Counter[str] = Counter()
    throttled: list[int] = []
    async with Tower(
        token=args.token,
        endpoint=args.url,
        workspace="my-org/production",
        cache_dir=args.cache,
        rate_limit=args.rate,
        limiter=args.limiter,  # a redis:// URL: one bucket shared by every child
        on_retry=lambda event: throttled.append(1) if event.status == 429 else None,
    ) as tw:
        print("READY", flush=True)
        start_signal(args.go)
        async with bulk_launch(
            tw,
            specs(args.prefix, args.items, not args.derive_names),
            journal=args.journal,
            concurrency=args.concurrency,
            reconcile_delay=args.reconcile_delay,
            run_names=f"{args.prefix}-{{digest}}" if args.derive_names else None,
        ) as outcomes:
            async for outcome in outcomes:
                if not counts:
                    print("FIRST", flush=True)
                counts[outcome.status] += 1
                counts["ok" if outcome.ok else "not_ok"] += 1
    print("RESULT " + orjson.dumps(counts).decode(), flush=True)
    print(f"THROTTLED {len(throttled)}", flush=True)
    return 0 if counts["not_ok"] == 0 else 3


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--journal", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--items", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=400.0)
    p.add_argument("--cache", default=None)
    p.add_argument("--limiter", default=None)
    p.add_argument("--go", default=None, help="wait for this file before launching")
    p.add_argument("--reconcile-delay", type=float, default=1.0)
    p.add_argument("--derive-names", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    # SIGINT as Ctrl-C even when started by a background shell, which leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sys.exit(asyncio.run(main(parse())))
    except TowerError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        sys.exit(4)
