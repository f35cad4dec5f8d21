"""Benchmark: bulk launches against the fake Platform at its real rate limit (20 calls/s).

Prints the wall time of ``--launches`` launches (default 1,000) through
:func:`tower_async.orchestration.bulk_launch` as a fraction of the physical floor
``launches / (20 * tokens)`` (1,000 / 20 = 50 s with one token; goal: within 5 %), with one
token and with ten (one session per token, workers sharing one input).  The wall time
includes the name resolutions (pipeline, launch configuration, compute environment), which
go through the same rate-limit buckets, and the journal (exclusively locked, every ``started``
record fsync'ed before its request goes out, as by default).

The fake runs in a child process (``--thread``: on a thread of this process), so this
process's event loop holds only the client.  ``--launches 200`` for a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from tower_async import Tower
from tower_async.orchestration import Journal, LaunchSpec, bulk_launch
from tower_async.testing import FakePlatform, run_in_thread

RATE = 20


def _tokens(fake: FakePlatform, n: int) -> list[str]:
    return [fake.token] + [fake.add_token() for _ in range(n - 1)]


def _report(fake: FakePlatform, tokens: list[str]) -> dict[str, Any]:
    rejected = sum(fake.stats(t).rejected for t in tokens)
    worst = max(fake.stats(t).max_window_count for t in tokens)
    names = Counter(r.run_name for r in fake.state.launches)
    return {
        "launches": len(fake.state.launches),
        "duplicates": sum(c - 1 for c in names.values() if c > 1),
        "rejected": rejected,
        "max_window": worst,
    }


def _child(conn: Connection, tokens: int) -> None:
    async def main() -> None:
        async with FakePlatform(rate_limit=RATE) as fake:
            toks = _tokens(fake, tokens)
            ws = fake.workspace_id("my-org", "production")
            conn.send((fake.url, toks, ws))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, conn.recv)  # "report"
            conn.send(_report(fake, toks))

    asyncio.run(main())


@contextlib.contextmanager
def fake_in_process(tokens: int) -> Iterator[tuple[str, list[str], int, Any]]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_child, args=(child, tokens), daemon=True)
    proc.start()
    url, toks, ws = parent.recv()

    def report() -> dict[str, Any]:
        parent.send("report")
        return parent.recv()  # type: ignore[no-any-return]

    try:
        yield url, toks, ws, report
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


@contextlib.contextmanager
def fake_in_thread(tokens: int) -> Iterator[tuple[str, list[str], int, Any]]:
    with run_in_thread(rate_limit=RATE) as fake:
        toks = _tokens(fake, tokens)  # before any request is in flight
        yield fake.url, toks, fake.workspace_id("my-org", "production"), lambda: _report(fake, toks)


def specs(n: int, prefix: str) -> Iterator[LaunchSpec]:
    for i in range(n):
        yield LaunchSpec("nf-core/rnaseq", params={"sample": i}, run_name=f"{prefix}-{i:06d}")


async def run(
    url: str, tokens: list[str], ws: int, launches: int, concurrency: int
) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="bench-launch-")
    sessions = [
        Tower(token=t, endpoint=url, workspace=ws, cache_dir=cache, rate_limit=RATE) for t in tokens
    ]
    for s in sessions:
        await s.open()
    try:
        statuses: Counter[str] = Counter()
        journal = Journal(f"{cache}/launches.jsonl")  # locked, `started` fsync'ed (default)
        t0 = time.perf_counter()
        async with bulk_launch(
            sessions, specs(launches, f"t{len(tokens)}"), concurrency=concurrency, journal=journal
        ) as outcomes:
            async for outcome in outcomes:
                statuses[outcome.status] += 1
        wall = time.perf_counter() - t0
    finally:
        for s in sessions:
            await s.close()
    return {"wall": wall, "statuses": dict(statuses)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--launches", type=int, default=1000)
    p.add_argument("--tokens", default="1,10", help="comma-separated token counts to measure")
    p.add_argument("--concurrency", type=int, default=8, help="launches in flight per token")
    p.add_argument("--thread", action="store_true", help="run the fake on a thread, not a process")
    args = p.parse_args(argv)
    where = fake_in_thread if args.thread else fake_in_process
    mode = "thread" if args.thread else "process"
    ok = True
    for n in (int(x) for x in args.tokens.split(",")):
        with where(n) as (url, toks, ws, report):
            result = asyncio.run(run(url, toks, ws, args.launches, args.concurrency))
            server = report()
        floor = args.launches / (RATE * n)
        ratio = result["wall"] / floor
        print(
            f"bulk_launch {args.launches} launches, {n} token(s) at {RATE}/s, fsync'ed journal, "
            f"fake in {mode}: "
            f"{result['wall']:.2f} s wall, floor {floor:.2f} s, {ratio:.3f}x floor "
            f"({(ratio - 1) * 100:+.1f}%); outcomes {result['statuses']}; "
            f"server: {server['launches']} launches, "
            f"{server['duplicates']} duplicates, {server['rejected']} x 429, "
            f"max {server['max_window']} calls in a 1 s window per token"
        )
        sys.stdout.flush()
        ok = ok and server["duplicates"] == 0 and server["launches"] == args.launches
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
