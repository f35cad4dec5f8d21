"""A child process for the ledger tests: ``python -m tests.ledger_children URL NAME OWNER
KEYS HOLD``.

Claims each of ``KEYS`` (``k0000`` ... ) on the Redis ledger ``NAME`` as ``OWNER``; for a claimed
key it "launches" (holds the lease ``HOLD`` seconds, heartbeating) and records ``launched``.
Prints ``claimed KEY`` as each claim succeeds (flushed), then ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from tower_async.orchestration.ledger_redis import RedisLedger


async def run(url: str, name: str, owner: str, keys: int, hold: float) -> None:
    async with RedisLedger(url, name) as ledger:
        for i in range(keys):
            key = f"k{i:04d}"
            if not await ledger.claim(key, owner, ttl=1.0, run_name=f"run-{key}"):
                continue
            print(f"claimed {key}", flush=True)
            async with ledger.holding(key, owner, ttl=1.0):
                await asyncio.sleep(hold)
            await ledger.record(key, "launched", workflow_id=f"wf-{key}", owner=owner)
    print("done", flush=True)


def main(argv: list[str]) -> int:
    url, name, owner, keys, hold = argv
    asyncio.run(run(url, name, owner, int(keys), float(hold)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
