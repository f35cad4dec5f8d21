#!/usr/bin/env python
"""Launch one run per row of a CSV samplesheet, wait for all of them, print a summary table.

    python examples/bulk_launch.py                       # embedded fake Platform, no setup
    TOWER_ACCESS_TOKEN=... python examples/bulk_launch.py -w my-org/production \\
        -p nf-core/rnaseq -s samplesheet.csv --journal launches.jsonl

Each row becomes a launch of the pipeline's saved launch configuration with the row's
columns as params and a unique run name (``<prefix>-<sample>``).  With ``--journal`` a
rerun (after a crash or Ctrl-C) skips what was already launched and looks up launches whose
outcome is unknown by their run name (``--on-uncertain skip`` leaves them alone instead).
Ctrl-C stops launching, prints the summary and exits 130.  Exit status: 0 when every row was
launched (now or by an earlier run), 1 when some were not - failed, may have launched
(unresolved) or never attempted - (2 with ``--strict`` when a run did not succeed).
Without ``TOWER_ACCESS_TOKEN`` the example starts the fake Platform in-process (runs take a
few seconds of real time, about 1 in 10 fails) and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from tower_async import Tower, TowerError
from tower_async.orchestration import LaunchOutcome, LaunchSpec, bulk_launch, wait_for_runs

HERE = Path(__file__).resolve().parent


@contextlib.asynccontextmanager
async def platform(workspace: str | None) -> AsyncIterator[dict[str, Any]]:
    """Tower() arguments: the real Platform (environment) or an embedded fake one."""
    if os.environ.get("TOWER_ACCESS_TOKEN"):
        print(f"Using the Seqera Platform at {os.environ.get('TOWER_API_ENDPOINT', 'cloud')}")
        yield {"workspace": workspace}
        return
    from tower_async.testing import FakePlatform, RealClock, RunDurations

    print("TOWER_ACCESS_TOKEN is not set: using the embedded fake Platform (tower_async.testing)")
    fake = FakePlatform(
        clock=RealClock(), durations=RunDurations(submitted=1.0, running=4.0), failure_rate=0.1
    )
    async with fake:
        yield {
            "token": fake.token,
            "endpoint": fake.url,
            "workspace": workspace or "my-org/production",
        }


def rows(path: Path, args: argparse.Namespace) -> Iterator[LaunchSpec]:
    """One LaunchSpec per row, read lazily (a million rows never sit in memory)."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            sample = row.get("sample") or row.get(next(iter(row)))
            yield LaunchSpec(
                args.pipeline,
                params={**row, "outdir": f"{args.outdir}/{sample}"} if args.outdir else dict(row),
                run_name=f"{args.prefix}-{sample}",
                labels=args.label or (),
                revision=args.revision,
            )


async def launch_rows(tw: Tower, args: argparse.Namespace, outcomes: list[LaunchOutcome]) -> bool:
    """Launch every row into ``outcomes``; False when interrupted (Ctrl-C, cancellation).

    Leaving the ``async with`` block, however it happens, stops launching at once and
    journals what was in flight; a rerun with the same journal picks up from there.
    """
    try:
        async with bulk_launch(
            tw,
            rows(args.samplesheet, args),
            concurrency=args.concurrency,
            journal=args.journal,
            on_uncertain=args.on_uncertain,
            progress_bar=None,  # a bar when stderr is a terminal and tqdm is installed
        ) as launches:
            async for outcome in launches:
                outcomes.append(outcome)
                if not outcome.ok:
                    print(f"  {outcome.key}: {outcome.status}: {outcome.error}", file=sys.stderr)
    except (asyncio.CancelledError, KeyboardInterrupt):
        task = asyncio.current_task()
        if task is not None:
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()  # handled here: print the summary, then exit 130
        print("Interrupted: stopped launching (rerun with the same --journal to resume)")
        return False
    return True


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    outcomes: list[LaunchOutcome] = []
    final: dict[str, str] = {}
    stopped = 0  # exit status when launching did not run to the end
    try:
        async with (
            platform(args.workspace) as options,
            Tower(**options, rate_limit=args.rate) as tw,
        ):
            print(f"Workspace {tw.workspace!r} (id {tw.workspace_id}), pipeline {args.pipeline!r}")
            if not await launch_rows(tw, args, outcomes):
                stopped = 130
            launched = [o.workflow_id for o in outcomes if o.workflow_id]
            print(f"Launched {len(launched)} rows in {time.monotonic() - started:.1f}s")
            if not stopped and launched and not args.no_wait:
                print(f"Waiting for {len(launched)} runs ...")
                async for result in wait_for_runs(
                    tw, launched, poll_interval=args.poll, max_interval=max(args.poll, 30.0)
                ):
                    final[result.workflow_id] = result.status
                    print(f"  {result.run_name or result.workflow_id}: {result.status}")
    except TowerError as exc:  # e.g. JournalLocked: another process is using the journal
        print(f"error: {exc}", file=sys.stderr)
        stopped = stopped or 1
    print_table(outcomes, final)
    total = sum(1 for _ in rows(args.samplesheet, args)) if stopped else len(outcomes)
    ok = sum(o.ok for o in outcomes)
    unresolved = sum(o.unresolved for o in outcomes)
    counts: dict[str, int] = {}
    for status in final.values():
        counts[status] = counts.get(status, 0) + 1
    print()
    print(
        f"{total} rows: {ok} launched, {total - ok} not launched "
        f"({unresolved} may have launched: check them or rerun; "
        f"{total - len(outcomes)} not attempted); runs: "
        + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none waited for")
        + f"; {time.monotonic() - started:.1f}s in all"
    )
    if stopped:
        return stopped
    if ok < total:
        return 1
    return 2 if args.strict and any(s != "SUCCEEDED" for s in final.values()) else 0


def print_table(outcomes: list[LaunchOutcome], final: dict[str, str]) -> None:
    width = max([len(o.key) for o in outcomes] + [8])
    print()
    print(f"{'run name':<{width}}  {'launch':<9}  {'workflow id':<16}  run status")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 16}  {'-' * 10}")
    for o in sorted(outcomes, key=lambda o: o.index):
        status = final.get(o.workflow_id or "", "-" if not o.workflow_id else "not waited")
        print(f"{o.key:<{width}}  {o.status:<9}  {o.workflow_id or '-':<16}  {status}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-s", "--samplesheet", type=Path, default=HERE / "samplesheet.csv")
    p.add_argument("-p", "--pipeline", default="nf-core/rnaseq", help="pipeline name (or id)")
    p.add_argument("-w", "--workspace", help="org/workspace or id (default: TOWER_WORKSPACE_ID)")
    p.add_argument("-r", "--revision")
    p.add_argument("--prefix", default="bulk", help="run name prefix (run names must be unique)")
    p.add_argument("--outdir", help="params.outdir base; each sample gets <outdir>/<sample>")
    p.add_argument("-l", "--label", action="append", help="label for every run (repeatable)")
    p.add_argument("-j", "--journal", type=Path, help="JSON-lines journal for safe reruns")
    p.add_argument(
        "--on-uncertain",
        choices=("reconcile", "skip"),
        default="reconcile",
        help="launches whose outcome is unknown: look them up by run name (default), or skip",
    )
    p.add_argument("--reconcile", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=20.0, help="calls/s per token (Platform: 20)")
    p.add_argument("--poll", type=float, default=None, help="seconds between status polls")
    p.add_argument("--no-wait", action="store_true", help="launch only")
    p.add_argument("--strict", action="store_true", help="exit 2 when a run did not succeed")
    args = p.parse_args(argv)
    if args.poll is None:
        args.poll = 5.0 if os.environ.get("TOWER_ACCESS_TOKEN") else 0.5
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse())))
    except KeyboardInterrupt:
        sys.exit(130)
