"""Start-up cost of a new process, as ratios against a bare ``import aiohttp, orjson``.

warm: import tower_async + load 1.181.0 from the schema cache + bind + open a session
      (ready to call), in a fresh interpreter;
cold: the same with an empty cache (YAML parse + spec validation + patches + cache write).

    python bench/bench_startup.py [--runs 10] [--version 1.181.0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median, ms, spec_path

BARE = "import aiohttp, orjson"
READY = """
import asyncio, sys
from tower_async import Tower
async def main():
    async with Tower(spec=sys.argv[1], token="bench", endpoint="http://127.0.0.1:9",
                     cache_dir=sys.argv[2]) as tw:
        assert len(tw.operations) > 0 and callable(tw.list_workflows)
asyncio.run(main())
"""


# As an installed package is: its .pyc files written (pip compiles them; an environment with
# PYTHONDONTWRITEBYTECODE set would otherwise compile tower_async from source in every process,
# while aiohttp's site-packages .pyc files exist, which is not a like-for-like comparison).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(code: str, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--version", default="1.181.0")
    opts = parser.parse_args()
    path = str(spec_path(opts.version))
    with tempfile.TemporaryDirectory() as tmp:
        run(BARE)  # warm the OS file cache and .pyc files
        run(READY, path, str(Path(tmp) / "pyc"))  # tower_async's .pyc files too
        cold_times = []
        for i in range(max(2, opts.runs // 3)):
            cold_dir = str(Path(tmp) / f"cold-{i}")
            cold_times.append(run(READY, path, cold_dir))
        warm_dir = str(Path(tmp) / "warm")
        run(READY, path, warm_dir)  # fill the cache
        bare_times, warm_times = [], []
        for _ in range(opts.runs):
            bare_times.append(run(BARE))
            warm_times.append(run(READY, path, warm_dir))
    bare, warm, cold = median(bare_times), median(warm_times), median(cold_times)
    print(f"bare 'import aiohttp, orjson' process: {ms(bare)} (median of {opts.runs})")
    print(
        f"warm start (import + load {opts.version} from cache + bind + open session): "
        f"{ms(warm)} = {warm / bare:.2f}x bare (goal < 1.5x)"
    )
    print(
        f"cold first load (parse YAML + validate + cache + bind): {ms(cold)} = "
        f"{cold / bare:.2f}x bare"
    )


if __name__ == "__main__":
    main()
