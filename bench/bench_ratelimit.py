"""Sustained throughput under the rate limit, against the fake Platform on loopback (issue 5).

    .venv/bin/python bench/bench_ratelimit.py [--seconds 10] [--keys 20] [--thread]

The fake runs in a child process (``--thread``: on a thread of this process) so that this
process's event loop holds only the client.  Five phases, each ``--seconds`` long:

1. loopback ceiling: one unlimited key, no client limit - what the path itself can carry;
2. one key, limit 20/s on both sides: calls/s as a fraction of the limit (goal >= 0.95,
   zero 429s);
3. ``--keys`` keys in one process, one session each: aggregate calls/s as a fraction of
   ``keys x 20/s`` (goal >= 0.95, zero 429s);
4. and 5. one key whose server-side limit is 5/s (an Enterprise install) with the client at
   20/s, adaptive bucket off then on: calls/s and the fraction of requests answered 429.

Then, through the Redis limiter (``--redis``, default on; needs ``redis-server`` on PATH, started
here on a random loopback port without persistence):

6. ``--procs`` (4) processes x 1 key: total calls/s as a fraction of 20/s (goal >= 0.95),
   429 count (goal 0);
7. ``--keys`` keys x 2 processes: total calls/s as a fraction of ``keys x 20/s`` (goal >= 0.95);
8. the per-call cost of ``acquire()`` with nothing to wait for: the Redis limiter against the
   in-process bucket (median of 5 runs of 2,000 calls each).

Phases 1-3, 5, 6 and 7 use the default, adaptive bucket.

429s and the most calls in any 1 s window come from the fake's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from tower_async import Tower
from tower_async.ratelimit import AiolimiterLimiter, LimiterRegistry
from tower_async.ratelimit_redis import RedisLimiter
from tower_async.testing import FakePlatform, run_in_thread

LIMIT = 20  # calls per second per key: the physical limit (Seqera Cloud's and the fake's)
LOW_LIMIT = 5  # the server-side limit of the "Enterprise" key (the client stays at LIMIT)


# -- the fake, somewhere else ----------------------------------------------------------------


@dataclass
class Server:
    url: str
    workspace: int
    unlimited: str
    keys: list[str]
    low: str  # a key the server limits to LOW_LIMIT
    stats: Callable[[], dict[str, dict[str, int]]]


def _setup(fake: FakePlatform, keys: int) -> tuple[str, list[str], str]:
    unlimited = fake.add_token(rate_limit=None)
    tokens = [fake.add_token(rate_limit=LIMIT) for _ in range(keys)]
    return unlimited, tokens, fake.add_token(rate_limit=LOW_LIMIT)


def _child(conn: Connection, keys: int) -> None:
    async def main() -> None:
        async with FakePlatform(rate_limit=LIMIT) as fake:
            unlimited, tokens, low = _setup(fake, keys)
            everyone = [unlimited, *tokens, low]
            ws = fake.workspace_id("my-org", "production")
            conn.send((fake.url, ws, unlimited, tokens, low))
            loop = asyncio.get_running_loop()
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command == "stop":
                    return
                conn.send({t: fake.stats(t).as_dict() for t in everyone})

    asyncio.run(main())


@contextlib.contextmanager
def fake_in_process(keys: int) -> Iterator[Server]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_child, args=(child, keys), daemon=True)
    proc.start()
    try:
        url, ws, unlimited, tokens, low = parent.recv()

        def stats() -> dict[str, dict[str, int]]:
            parent.send("stats")
            result: dict[str, dict[str, int]] = parent.recv()
            return result

        yield Server(url, ws, unlimited, tokens, low, stats)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


@contextlib.contextmanager
def fake_in_thread(keys: int) -> Iterator[Server]:
    with run_in_thread(rate_limit=LIMIT) as fake:
        lock = threading.Lock()
        unlimited, tokens, low = _setup(fake, keys)

        def stats() -> dict[str, dict[str, int]]:
            with lock:  # reads only; the counters are plain ints
                return {t: fake.stats(t).as_dict() for t in [unlimited, *tokens, low]}

        ws = fake.workspace_id("my-org", "production")
        yield Server(fake.url, ws, unlimited, tokens, low, stats)


# -- the client ------------------------------------------------------------------------------


@dataclass
class Result:
    ok: int  # calls answered within the window
    sent: int  # requests the fake received (all keys of the phase, 429s included)
    rejected: int  # 429s the fake answered (all keys of the phase)
    window: int  # most calls the fake accepted for one key in any 1 s window


async def hammer(
    sessions: list[Tower], workspace: int, tasks: int, seconds: float
) -> tuple[int, list[BaseException]]:
    """``tasks`` workers per session calling ListWorkflows for ``seconds``; returns the
    successes completed within the window (calls still waiting are cancelled) and errors."""
    ok = 0
    errors: list[BaseException] = []
    deadline = time.monotonic() + seconds

    async def worker(tw: Tower) -> None:
        nonlocal ok
        while True:
            try:
                await tw.list_workflows(workspace_id=workspace, max=1)
            except Exception as exc:
                errors.append(exc)
                continue
            if time.monotonic() <= deadline:
                ok += 1

    workers = [asyncio.create_task(worker(tw)) for tw in sessions for _ in range(tasks)]
    await asyncio.sleep(seconds)
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return ok, errors


async def drive(
    server: Server,
    tokens: list[str],
    rate: float | None,
    tasks: int,
    seconds: float,
    *,
    adaptive: bool = True,
) -> Result:
    """``tasks`` workers per token calling ListWorkflows for ``seconds``; returns successes
    completed within the window (calls still waiting at the end are cancelled)."""
    registry = LimiterRegistry()
    cache = tempfile.mkdtemp(prefix="bench-cache-")
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(
                Tower(
                    token=token,
                    endpoint=server.url,
                    cache_dir=cache,
                    limiter=registry.get(token, rate, adaptive=adaptive),
                    validation="off",
                )
            )
            for token in tokens
        ]
        for tw in sessions:  # warm the connection pool outside the measurement
            await tw.list_workflows(workspace_id=server.workspace, max=1)
        await asyncio.sleep(1.1)  # and let the warm-up calls leave the fake's window
        before = server.stats()
        ok, errors = await hammer(sessions, server.workspace, tasks, seconds)
    after = server.stats()
    if errors:
        print(f"  ({len(errors)} calls raised, first: {errors[0]!r})")
    return Result(
        ok,
        sum(after[t]["calls"] - before[t]["calls"] for t in tokens),
        sum(after[t]["rejected"] - before[t]["rejected"] for t in tokens),
        max(after[t]["max_window_count"] for t in tokens),
    )


# -- through Redis, from several processes -----------------------------------------------------


def _redis_child(
    conn: Connection, server: tuple[str, int], redis_url: str, tokens: list[str], tasks: int
) -> None:
    """One worker process: sessions on ``tokens`` through the Redis limiter; waits for "go",
    then runs the seconds it is sent and answers its count of successes."""
    url, ws = server

    async def main() -> None:
        cache = tempfile.mkdtemp(prefix="bench-cache-")
        async with contextlib.AsyncExitStack() as stack:
            sessions = [
                await stack.enter_async_context(
                    Tower(token=t, endpoint=url, cache_dir=cache, limiter=redis_url,
                          validation="off")
                )
                for t in tokens
            ]  # fmt: skip
            for tw in sessions:
                await tw.list_workflows(workspace_id=ws, max=1)
            loop = asyncio.get_running_loop()
            conn.send("ready")
            seconds = await loop.run_in_executor(None, conn.recv)
            ok, errors = await hammer(sessions, ws, tasks, seconds)
            if errors:
                print(f"  ({len(errors)} calls raised, first: {errors[0]!r})")
            conn.send(ok)

    asyncio.run(main())


def drive_processes(
    server: Server, redis_url: str, tokens: list[str], procs: int, tasks: int, seconds: float
) -> Result:
    ctx = mp.get_context("spawn")
    pipes, children = [], []
    for _ in range(procs):
        parent, child = ctx.Pipe()
        args = (child, (server.url, server.workspace), redis_url, tokens, tasks)
        proc = ctx.Process(target=_redis_child, args=args, daemon=True)
        proc.start()
        pipes.append(parent)
        children.append(proc)
    try:
        for p in pipes:
            if not p.poll(120) or p.recv() != "ready":
                raise SystemExit("a worker process did not start")
        time.sleep(1.1)  # the warm-up calls leave the fake's window
        before = server.stats()
        for p in pipes:
            p.send(seconds)
        ok = sum(p.recv() for p in pipes if p.poll(seconds + 60))
        after = server.stats()
    finally:
        for proc in children:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return Result(
        ok,
        sum(after[t]["calls"] - before[t]["calls"] for t in tokens),
        sum(after[t]["rejected"] - before[t]["rejected"] for t in tokens),
        max(after[t]["max_window_count"] for t in tokens),
    )


async def acquire_cost(redis_url: str, calls: int = 2000) -> tuple[float, float]:
    """Median seconds per ``acquire()`` with nothing to wait for: in-process, Redis."""
    local = AiolimiterLimiter(1e9)
    shared = RedisLimiter(redis_url, "bench-cost-token", 1e9)
    results: list[list[float]] = [[], []]
    try:
        for _ in range(5):
            limiters: tuple[AiolimiterLimiter | RedisLimiter, ...] = (local, shared)
            for i, limiter in enumerate(limiters):
                t0 = time.perf_counter()
                for _ in range(calls):
                    await limiter.acquire()
                results[i].append((time.perf_counter() - t0) / calls)
    finally:
        await shared.aclose()
    return sorted(results[0])[2], sorted(results[1])[2]


def redis_phases(server: Server, args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.redis_server import RedisServer, RedisServerMissing

    s = args.seconds
    try:
        redis = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    except RedisServerMissing as exc:
        print(f"Redis phases skipped: {exc}")
        return
    try:
        n = args.procs
        r = drive_processes(server, redis.url, server.keys[1:2], n, args.tasks // n, s)
        rate = r.ok / s
        print(
            f"redis, {n} processes x 1 key: {rate:6.2f} calls/s = {rate / LIMIT:.3f} x {LIMIT}/s "
            f"(goal >= 0.95); 429s: {r.rejected} (goal 0); max in any 1 s: {r.window}"
        )
        k = args.keys
        r = drive_processes(server, redis.url, server.keys, 2, 2, s)
        rate = r.ok / s
        print(
            f"redis, {k} keys x 2 processes: {rate:6.1f} calls/s = {rate / (k * LIMIT):.3f} x "
            f"{k} x {LIMIT}/s (goal >= 0.95); 429s: {r.rejected}; max in any 1 s: {r.window}"
        )
        local, shared = asyncio.run(acquire_cost(redis.url))
        print(
            f"acquire() cost, nothing to wait for: in-process {local * 1e6:.1f} us, "
            f"redis {shared * 1e6:.1f} us ({shared / local:.0f}x; one EVALSHA round trip)"
        )
    finally:
        redis.stop()


def local_phases(server: Server, args: argparse.Namespace) -> None:
    s = args.seconds
    r = asyncio.run(drive(server, [server.unlimited], None, args.tasks, s))
    print(f"loopback ceiling, 1 key, no limit: {r.ok / s:7.1f} calls/s")

    r = asyncio.run(drive(server, server.keys[:1], LIMIT, args.tasks, s))
    rate = r.ok / s
    print(
        f"one key:  {rate:6.2f} calls/s = {rate / LIMIT:.3f} x {LIMIT}/s (goal >= 0.95); "
        f"429s: {r.rejected}; max in any 1 s: {r.window}"
    )

    n = args.keys
    r = asyncio.run(drive(server, server.keys, LIMIT, max(2, args.tasks // 5), s))
    rate = r.ok / s
    print(
        f"{n} keys: {rate:6.1f} calls/s = {rate / (n * LIMIT):.3f} x {n} x {LIMIT}/s "
        f"(goal >= 0.95); 429s: {r.rejected}; max in any 1 s for one key: {r.window}"
    )

    for adaptive in (False, True):
        r = asyncio.run(drive(server, [server.low], LIMIT, args.tasks, s, adaptive=adaptive))
        rate = r.ok / s
        print(
            f"server {LOW_LIMIT}/s, client {LIMIT}/s, adaptive {'on ' if adaptive else 'off'}: "
            f"{rate:5.2f} calls/s = {rate / LOW_LIMIT:.3f} x {LOW_LIMIT}/s; "
            f"429s: {r.rejected} of {r.sent} requests = {r.rejected / max(r.sent, 1):.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    p.add_argument("--keys", type=int, default=20, help="keys in the aggregate phase")
    p.add_argument("--tasks", type=int, default=50, help="concurrent tasks per key")
    p.add_argument("--thread", action="store_true", help="run the fake on a thread, not a process")
    p.add_argument("--procs", type=int, default=4, help="processes sharing one key via Redis")
    p.add_argument("--no-redis", dest="redis", action="store_false", help="skip phases 6-8")
    p.add_argument("--only-redis", action="store_true", help="run phases 6-8 only")
    args = p.parse_args(argv)
    where = fake_in_thread if args.thread else fake_in_process
    with where(args.keys) as server:
        mode = "thread" if args.thread else "process"
        print(f"fake Platform on {server.url} ({mode}); physical limit {LIMIT} calls/s per key")
        if not args.only_redis:
            local_phases(server, args)
        if args.redis:
            redis_phases(server, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
