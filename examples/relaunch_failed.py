#!/usr/bin/env python
"""Relaunch the failed runs of a bulk launch, resumed from their cache; wait; print before/after.

    python examples/relaunch_failed.py                        # embedded fake Platform, no setup
    TOWER_ACCESS_TOKEN=... python examples/relaunch_failed.py -w my-org/production \\
        -j launches.jsonl                                     # the journal of bulk_launch.py

Reads the bulk-launch journal (``-j``, never written), relaunches every run whose state is
FAILED (``--status`` to pick others) with ``resume`` (``--no-resume``: from scratch) through
a bulk launch with its own journal (``--relaunch-journal``, default ``<journal>.relaunch``),
so a rerun after a crash or Ctrl-C relaunches nothing twice.  Runs that cannot be resumed
(no commit reported) are relaunched from scratch and listed as such.
Exit status: 0 when every failed run was relaunched, 1 when some were not (2 with
``--strict`` when a relaunched run did not succeed).  Without ``TOWER_ACCESS_TOKEN`` the
example starts the fake Platform in-process, first launches a small batch in which every
5th run fails (one of them cannot be resumed), and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tower_async import Tower
from tower_async.orchestration import (
    Journal,
    LaunchSpec,
    RelaunchOutcome,
    bulk_launch,
    relaunch_failed,
    wait_for_runs,
)


@contextlib.asynccontextmanager
async def platform(args: argparse.Namespace) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """Tower() arguments and the fake Platform (None on the real one, from the environment)."""
    if os.environ.get("TOWER_ACCESS_TOKEN"):
        print(f"Using the Seqera Platform at {os.environ.get('TOWER_API_ENDPOINT', 'cloud')}")
        yield {"workspace": args.workspace}, None
        return
    from tower_async.testing import FakePlatform, RealClock, RunDurations

    print("TOWER_ACCESS_TOKEN is not set: using the embedded fake Platform (tower_async.testing)")
    fake = FakePlatform(clock=RealClock(), durations=RunDurations(submitted=0.2, running=1.0))
    async with fake:
        options = {"token": fake.token, "endpoint": fake.url, "workspace": "my-org/production"}
        yield options, fake


async def demo_batch(tw: Tower, fake: Any, journal: Path, n: int, poll: float) -> None:
    """On the fake Platform: a bulk launch of ``n`` runs, every 5th failing (the first such
    one without a commit, so it cannot be resumed), to relaunch the failures of."""
    specs = (LaunchSpec("nf-core/rnaseq", run_name=f"demo-{i:03d}") for i in range(n))
    ids = [o.workflow_id async for o in bulk_launch(tw, specs, journal=journal) if o.workflow_id]
    for i, wid in enumerate(ids):
        if i % 5 == 4:
            fake.state.workflows[wid].fails = True  # scripted: a relaunch is a new run
        if i == 4:
            fake.state.workflows[wid].commit_id = None
    print(f"Launched a demo batch of {len(ids)} runs, every 5th fails (journal {journal}) ...")
    async for _ in wait_for_runs(tw, ids, poll_interval=poll, max_interval=1.0):
        pass


async def states(tw: Tower, ids: list[str], concurrency: int = 8) -> dict[str, dict[str, Any]]:
    """The runs as they are now (``DescribeWorkflow``, a few at a time)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(wid: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            return wid, (await tw.describe_workflow(workflow_id=wid))["workflow"]

    return dict(await asyncio.gather(*(one(w) for w in ids)))


def counts(statuses: Any) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(statuses).items())) or "none"


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    async with platform(args) as (options, fake), Tower(**options) as tw:
        journal = args.journal
        if fake is not None:
            await demo_batch(tw, fake, journal, args.demo_runs, args.poll)
        ids = [e.workflow_id for e in Journal(journal).load().values() if e.workflow_id]
        before = await states(tw, ids)
        was = counts(r["status"] for r in before.values())
        print(f"Before: {len(before)} runs in {journal}: {was}")
        outcomes: list[RelaunchOutcome] = []
        async for o in relaunch_failed(
            tw,
            journal,
            statuses=args.status,
            resume=not args.no_resume,
            journal=args.relaunch_journal or journal.with_suffix(".relaunch.jsonl"),
            concurrency=args.concurrency,
        ):
            outcomes.append(o)
            if not o.ok:
                print(f"  {o.relaunch_of}: {o.status}: {o.error}", file=sys.stderr)
        new_ids = [o.workflow_id for o in outcomes if o.workflow_id]
        print(f"Relaunched {len(new_ids)} of {len(outcomes)} {'/'.join(args.status)} runs")
        final: dict[str, str] = {}
        if new_ids and not args.no_wait:
            print(f"Waiting for {len(new_ids)} runs ...")
            async for result in wait_for_runs(
                tw, new_ids, poll_interval=args.poll, max_interval=max(args.poll, 30.0)
            ):
                final[result.workflow_id] = result.status

    print()
    print(f"{'run':<20}  {'before':<9}  {'relaunch':<16}  {'how':<8}  after")
    print(f"{'-' * 20}  {'-' * 9}  {'-' * 16}  {'-' * 8}  {'-' * 10}")
    for o in sorted(outcomes, key=lambda o: str(before[o.relaunch_of].get("runName"))):
        name = str(before[o.relaunch_of].get("runName") or o.relaunch_of)
        how = {True: "resumed", False: "scratch", None: "earlier"}[o.resumed]
        after = final.get(o.workflow_id or "", "-" if not o.workflow_id else "not waited")
        new = o.workflow_id or o.status
        print(f"{name:<20}  {o.original_status:<9}  {new:<16}  {how:<8}  {after}")
    bad = sum(not o.ok for o in outcomes)
    print()
    print(
        f"Before: {was}; relaunched {len(new_ids)} "
        f"({sum(o.resumed is False for o in outcomes)} from scratch), {bad} not relaunched; "
        f"after: {counts(final.values()) if final else 'not waited for'}; "
        f"{time.monotonic() - started:.1f}s in all"
    )
    if bad:
        return 1
    return 2 if args.strict and any(s != "SUCCEEDED" for s in final.values()) else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-j", "--journal", type=Path, help="the bulk launch's JSON-lines journal")
    p.add_argument("-w", "--workspace", help="org/workspace or id (default: TOWER_WORKSPACE_ID)")
    p.add_argument("--relaunch-journal", type=Path, help="default: <journal>.relaunch.jsonl")
    p.add_argument("--status", action="append", help="run status to relaunch (default FAILED)")
    p.add_argument("--no-resume", action="store_true", help="relaunch from scratch")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--poll", type=float, default=None, help="seconds between status polls")
    p.add_argument("--no-wait", action="store_true", help="relaunch only")
    p.add_argument("--strict", action="store_true", help="exit 2 when a relaunch did not succeed")
    p.add_argument("--demo-runs", type=int, default=10, help="fake Platform: demo batch size")
    args = p.parse_args(argv)
    real = bool(os.environ.get("TOWER_ACCESS_TOKEN"))
    if args.journal is None:
        if real:
            p.error("-j/--journal is required on the real Platform")
        args.journal = Path(tempfile.mkdtemp(prefix="relaunch-demo-")) / "launches.jsonl"
    elif real and not args.journal.is_file():
        p.error(f"no journal at {args.journal}")
    elif not real and args.journal.exists():
        p.error(f"{args.journal} exists: the embedded fake Platform starts empty, name a new file")
    args.status = [s.upper() for s in args.status or ["FAILED"]]
    if args.poll is None:
        args.poll = 5.0 if real else 0.2
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse())))
    except KeyboardInterrupt:
        sys.exit(130)
