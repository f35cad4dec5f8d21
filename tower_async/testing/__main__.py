"""``python -m tower_async.testing``: serve a fake Platform until Ctrl-C.

The run clock follows real time (``--time-scale`` speeds it up); prints ``URL`` and
``TOKEN`` lines first, then serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .clock import RealClock
from .faults import parse_fault
from .server import FakePlatform
from .state import RunDurations


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tower_async.testing", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--rate-limit", type=int, default=20, help="calls per second per token; 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spec", default=None, help="serve a real document: VERSION or PATH")
    p.add_argument("--time-scale", type=float, default=1.0, help="run clock speed-up")
    p.add_argument("--submitted", type=float, default=5.0, help="seconds a run stays SUBMITTED")
    p.add_argument("--running", type=float, default=60.0, help="seconds a run stays RUNNING")
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.add_argument("--token", default=None, help="register this token as the default one")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="ROUTE:KIND[:k=v,...]",
        help="a fault rule (repeatable), e.g. CreateWorkflowLaunch:drop_after:probability=0.1",
    )
    return p.parse_args(argv)


def _fault(text: str) -> dict[str, object]:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def serve(args: argparse.Namespace) -> None:
    platform = FakePlatform(
        seed=args.seed,
        rate_limit=args.rate_limit or None,
        clock=RealClock(scale=args.time_scale),
        durations=RunDurations(args.submitted, args.running),
        failure_rate=args.failure_rate,
        spec=args.spec,
        host=args.host,
        port=args.port,
    )
    if args.token:
        platform.token = platform.state.add_token(token=args.token)
    for rule in args.fault:
        platform.faults.add(**rule)
    async with platform:
        print(f"URL: {platform.url}", flush=True)
        print(f"TOKEN: {platform.token}", flush=True)
        print(f"API_VERSION: {platform.api_version}", flush=True)
        print("Serving the fake Seqera Platform; Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
