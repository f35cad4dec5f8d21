#!/usr/bin/env python
"""Follow the active runs of a workspace: status changes as they happen, and one run's log.

    python examples/watch_runs.py                    # embedded fake Platform, no setup
    TOWER_ACCESS_TOKEN=... python examples/watch_runs.py -w my-org/production --log

Finds the SUBMITTED and RUNNING runs, prints every status change until they have all ended
(or ``--timeout``), and with ``--log`` streams the newest run's log as it grows.  Without
``TOWER_ACCESS_TOKEN`` it starts the fake Platform in-process, launches a few runs to watch
(they take a few seconds of real time) and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from tower_async import Tower
from tower_async.orchestration import WaitTimeout, follow_log, launch, wait_for_runs


@contextlib.asynccontextmanager
async def platform(workspace: str | None) -> AsyncIterator[dict[str, Any]]:
    if os.environ.get("TOWER_ACCESS_TOKEN"):
        print(f"Using the Seqera Platform at {os.environ.get('TOWER_API_ENDPOINT', 'cloud')}")
        yield {"workspace": workspace, "demo": False}
        return
    from tower_async.testing import FakePlatform, RealClock, RunDurations

    print("TOWER_ACCESS_TOKEN is not set: using the embedded fake Platform (tower_async.testing)")
    async with FakePlatform(
        clock=RealClock(), durations=RunDurations(submitted=1.0, running=3.0), log_size=8000
    ) as fake:
        yield {
            "token": fake.token,
            "endpoint": fake.url,
            "workspace": workspace or "my-org/production",
            "demo": True,
        }


async def active_runs(tw: Tower) -> list[dict[str, Any]]:
    """The workspace's SUBMITTED and RUNNING runs (every page)."""
    runs: list[dict[str, Any]] = []
    for status in ("SUBMITTED", "RUNNING"):
        async for item in tw.list_workflows.items(search=f"status:{status}", page_size=100):
            wf = item["workflow"]
            if wf.get("status") == status:
                runs.append(wf)
    return runs


async def main(args: argparse.Namespace) -> int:
    async with platform(args.workspace) as options:
        demo = options.pop("demo")
        async with Tower(**options) as tw:
            if demo:
                for i in range(4):
                    await launch(tw, "nf-core/rnaseq", run_name=f"watched-{i}", params={"i": i})
            runs = await active_runs(tw)
            print(f"{len(runs)} active run(s) in workspace {tw.workspace!r}")
            if not runs:
                return 0
            names = {wf["id"]: wf.get("runName") or wf["id"] for wf in runs}
            t0 = time.monotonic()

            def show(workflow_id: str, status: str | None) -> None:
                print(f"[{time.monotonic() - t0:6.1f}s] {names[workflow_id]:<24} {status}")

            async def tail(workflow_id: str) -> None:
                async for line in follow_log(tw, workflow_id, poll_interval=args.poll):
                    print(f"    {names[workflow_id]} | {line}")

            log_task = asyncio.create_task(tail(runs[0]["id"])) if args.log else None
            try:
                async for _ in wait_for_runs(
                    tw,
                    list(names),
                    poll_interval=args.poll,
                    max_interval=max(args.poll, 30.0),
                    timeout=args.timeout,
                    on_status=show,
                ):
                    pass
            except WaitTimeout as exc:
                print(f"stopped watching: {exc}")
            if log_task is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(log_task, timeout=max(5.0, 3 * args.poll))
            print("all watched runs have ended")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-w", "--workspace", help="org/workspace or id (default: TOWER_WORKSPACE_ID)")
    p.add_argument("--log", action="store_true", help="stream the newest run's log")
    p.add_argument("--timeout", type=float, default=None, help="stop watching after N seconds")
    p.add_argument("--poll", type=float, default=None, help="seconds between polls")
    args = p.parse_args(argv)
    if args.poll is None:
        args.poll = 5.0 if os.environ.get("TOWER_ACCESS_TOKEN") else 0.5
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse())))
    except KeyboardInterrupt:
        sys.exit(130)
