"""A child process for the Redis tests: ``python -m tests.redis_children ENDPOINT WORKSPACE
LIMITER CALLS RATE TOKEN...``.

Makes ``CALLS`` ListWorkflows calls per token through ``Tower(limiter=LIMITER,
rate_limit=RATE)`` (``LIMITER`` a ``redis://`` URL) and prints one JSON line: calls made
and 429s the retry layer absorbed.  Exits 1 on any error.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tower_async import Tower
from tower_async.retries import RetryEvent


async def run(
    endpoint: str, workspace: int, limiter: str, calls: int, rate: float, tokens: list[str]
) -> None:
    throttled = 0
    ok = 0

    def on_retry(event: RetryEvent) -> None:
        nonlocal throttled
        throttled += event.status == 429

    async def one(token: str) -> None:
        nonlocal ok
        async with Tower(
            token=token,
            endpoint=endpoint,
            limiter=limiter,
            rate_limit=rate,
            cache_dir=None,  # the run's user cache ($TOWER_ASYNC_CACHE_DIR)
            validation="off",
            on_retry=on_retry,
        ) as tw:

            async def call() -> None:
                nonlocal ok
                await tw.list_workflows(workspace_id=workspace, max=1)
                ok += 1

            await asyncio.gather(*(call() for _ in range(calls)))

    await asyncio.wait_for(asyncio.gather(*(one(t) for t in tokens)), timeout=120)
    print(json.dumps({"ok": ok, "throttled": throttled}), flush=True)


def main(argv: list[str]) -> int:
    endpoint, workspace, limiter, calls, rate, *tokens = argv
    asyncio.run(run(endpoint, int(workspace), limiter, int(calls), float(rate), tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
