#!/usr/bin/env python
"""Stream every run of a workspace to CSV, page by page (constant memory).

    python examples/export_runs.py                   # embedded fake Platform, no setup
    TOWER_ACCESS_TOKEN=... python examples/export_runs.py -w my-org/production -o runs.csv
    python examples/export_runs.py --search status:FAILED -o -      # to stdout

Without ``TOWER_ACCESS_TOKEN`` it starts the fake Platform in-process with a few hundred
runs in various states and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from tower_async import Tower

COLUMNS = (
    "id",
    "runName",
    "status",
    "projectName",
    "revision",
    "submit",
    "start",
    "complete",
    "duration",
    "userName",
    "workDir",
    "commitId",
)


@contextlib.asynccontextmanager
async def platform(workspace: str | None) -> AsyncIterator[dict[str, Any]]:
    if os.environ.get("TOWER_ACCESS_TOKEN"):
        print(
            f"Using the Seqera Platform at {os.environ.get('TOWER_API_ENDPOINT', 'cloud')}",
            file=sys.stderr,
        )
        yield {"workspace": workspace}
        return
    from tower_async.testing import FakePlatform

    print(
        "TOWER_ACCESS_TOKEN is not set: using the embedded fake Platform (tower_async.testing)",
        file=sys.stderr,
    )
    async with FakePlatform() as fake:
        ws = fake.workspace_id("my-org", "production")
        for status, n in (("SUCCEEDED", 180), ("FAILED", 25), ("CANCELLED", 10), ("RUNNING", 30)):
            fake.state.add_workflows(ws, n, status=status, run_name_prefix=status.lower())
        yield {"token": fake.token, "endpoint": fake.url, "workspace": workspace or ws}


async def export(tw: Tower, out: IO[str], search: str | None) -> int:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    n = 0
    async for item in tw.list_workflows.items(search=search, page_size=100, prefetch=True):
        writer.writerow(item["workflow"])
        n += 1
    return n


async def main(args: argparse.Namespace, out: IO[str]) -> int:
    started = time.monotonic()
    async with platform(args.workspace) as options, Tower(**options) as tw:
        n = await export(tw, out, args.search)
    where = "stdout" if args.output == "-" else args.output
    print(f"{n} runs written to {where} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-w", "--workspace", help="org/workspace or id (default: TOWER_WORKSPACE_ID)")
    p.add_argument("-o", "--output", default="runs.csv", help="CSV file, or - for stdout")
    p.add_argument("--search", help="Platform search filter, e.g. status:FAILED")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    try:
        if arguments.output == "-":
            sys.exit(asyncio.run(main(arguments, sys.stdout)))
        with Path(arguments.output).open("w", newline="") as fh:
            code = asyncio.run(main(arguments, fh))
        sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)
