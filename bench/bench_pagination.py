"""Benchmark: stream runs with ``tw.list_workflows.items()`` from the fake Platform on loopback.

Prints items/s against the bound set by the rate limit and the page size
(``rate_limit * page_size``: 20 calls/s x 100 = 2,000 items/s) and the client process's peak
RSS growth while streaming (goal: under 20 MB; pages are not accumulated).

The fake runs in a child process by default (``--server process``), seeded in memory, so the
RSS and CPU measured here are the client's alone; ``--server thread`` runs it on a thread
of this process instead (its memory then counts too).

    .venv/bin/python bench/bench_pagination.py                 # 100,000 runs: about 50 s
    .venv/bin/python bench/bench_pagination.py --runs 10000 --prefetch
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from tower_async import Tower
from tower_async.retries import RetryEvent
from tower_async.testing import FakePlatform, run_in_thread

MB = 1024 * 1024


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


# -- the fake, in a child process ----------------------------------------------------------


def _serve(conn: Connection, runs: int, rate_limit: int) -> None:
    async def main() -> None:
        async with FakePlatform(rate_limit=rate_limit or None) as fake:
            ws = fake.workspace_id("my-org", "production")
            started = time.perf_counter()
            fake.state.add_workflows(ws, runs)
            conn.send((fake.url, fake.token, ws, time.perf_counter() - started))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told
            conn.send(fake.stats().as_dict())

    asyncio.run(main())


@contextlib.contextmanager
def fake_in_process(runs: int, rate_limit: int) -> Iterator[tuple[str, str, int, float, Any]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, runs, rate_limit), daemon=True)
    proc.start()
    url, token, ws, seeded = parent.recv()
    stats: dict[str, Any] = {}
    try:
        yield url, token, ws, seeded, stats
    finally:
        parent.send("stop")
        with contextlib.suppress(EOFError, OSError):
            if parent.poll(10):
                stats.update(parent.recv())
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


@contextlib.contextmanager
def fake_in_thread(runs: int, rate_limit: int) -> Iterator[tuple[str, str, int, float, Any]]:
    with run_in_thread(rate_limit=rate_limit or None) as fake:
        ws = fake.workspace_id("my-org", "production")
        started = time.perf_counter()
        fake.state.add_workflows(ws, runs)  # no request in flight yet
        stats: dict[str, Any] = {}
        yield fake.url, fake.token, ws, time.perf_counter() - started, stats
        stats.update(fake.stats().as_dict())


# -- the client ------------------------------------------------------------------------------


async def stream(args: argparse.Namespace, url: str, token: str, ws: int) -> dict[str, Any]:
    retries: list[RetryEvent] = []
    with tempfile.TemporaryDirectory() as cache:
        async with Tower(
            token=token,
            endpoint=url,
            cache_dir=cache,
            rate_limit=args.rate_limit or None,
            on_retry=retries.append,
            validation=args.validation,
        ) as tw:
            # warm up: document bound, connection open, validator compiled, one page parsed
            await tw.list_workflows(workspace_id=ws, max=args.page_size)
            await asyncio.sleep(1.0)  # let the rate window drain
            base_peak, base_now = peak_rss(), current_rss()
            count = 0
            last_id = None
            started = time.perf_counter()
            it = tw.list_workflows.items(
                workspace_id=ws, page_size=args.page_size, prefetch=args.prefetch
            )
            async with it:
                async for run in it:
                    count += 1
                    last_id = run["workflow"]["id"]
            elapsed = time.perf_counter() - started
            return {
                "count": count,
                "elapsed": elapsed,
                "pages": it.pages_fetched,
                "retries": len(retries),
                "throttled": sum(1 for e in retries if e.status == 429),
                "base_peak": base_peak,
                "base_now": base_now,
                "peak": peak_rss(),
                "now": current_rss(),
                "last_id": last_id,
            }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=100_000, help="runs to seed and stream")
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--rate-limit", type=int, default=20, help="calls/s, client and server")
    p.add_argument("--prefetch", action="store_true", help="fetch one page ahead")
    p.add_argument("--server", choices=("process", "thread"), default="process")
    p.add_argument("--validation", choices=("warn", "strict", "off"), default="warn")
    args = p.parse_args(argv)

    runner = fake_in_process if args.server == "process" else fake_in_thread
    with runner(args.runs, args.rate_limit) as (url, token, ws, seeded, stats):
        print(
            f"fake Platform ({args.server}) at {url}: seeded {args.runs:,} runs in {seeded:.1f} s"
        )
        r = asyncio.run(stream(args, url, token, ws))
    rate = r["count"] / r["elapsed"] if r["elapsed"] else float("inf")
    print(
        f"streamed {r['count']:,} runs in {r['pages']:,} pages of {args.page_size} "
        f"in {r['elapsed']:.2f} s (prefetch={'on' if args.prefetch else 'off'}, "
        f"validation={args.validation})"
    )
    if args.rate_limit:
        bound = args.rate_limit * args.page_size
        print(
            f"throughput: {rate:,.0f} items/s = {rate / bound:.1%} of the bound "
            f"{bound:,} items/s ({args.rate_limit} calls/s x {args.page_size} per page)"
        )
    else:
        print(f"throughput: {rate:,.0f} items/s (no rate limit)")
    accepted, rejected = stats.get("accepted", "?"), stats.get("rejected", "?")
    print(
        f"retries: {r['retries']} (429s: {r['throttled']}); server: {accepted} accepted, "
        f"{rejected} rejected, at most {stats.get('max_window_count', '?')} per 1 s window"
    )
    growth = (r["peak"] - r["base_peak"]) / MB
    print(
        f"peak RSS growth while streaming: {growth:.1f} MB (peak {r['base_peak'] / MB:.1f} -> "
        f"{r['peak'] / MB:.1f} MB; current {r['base_now'] / MB:.1f} -> {r['now'] / MB:.1f} MB); "
        f"goal < 20 MB: {'OK' if growth < 20 else 'MISSED'}"
    )
    if r["count"] != args.runs:
        print(f"ERROR: expected {args.runs:,} runs, streamed {r['count']:,}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
