"""Per-call overhead of a whole session call against raw aiohttp + orjson (issue #17).

    python bench/bench_overhead.py [--rounds N] [--repeats 3] [--spec PATH]

An in-process aiohttp.web server on loopback serves the payloads of bench_validation.py
(a 100-run ListWorkflows page, a DescribeWorkflow, a 204 DELETE).  For each repeat, in one
run and with interleaved rounds, it measures medians of:

* raw: ``aiohttp`` request with the ``Authorization`` header + ``orjson.loads`` on one
  ClientSession;
* ``Tower(validation="warn", rate_limit=None)`` (the default mode, limiter off) and
  ``Tower(validation="off", rate_limit=None)``, each awaiting the bound operation;
* 50 concurrent DescribeWorkflow tasks (calls/s) for raw, warn and off: 9 rounds, raw
  measured in each beside the sessions (the order rotating), the median of the per-round
  ratios.

It prints each ratio to raw per repeat, then the median ratio and the spread over repeats.
Goals: each sequential call <= 1.15x raw in warn mode; concurrent calls/s >= 0.8x raw in
warn mode, >= 0.9x in off mode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import spec_path
from bench_validation import payloads, serve

from tower_async import Tower

Call = Callable[[], Awaitable[Any]]
WORKFLOW = "4Bx1b1F7zvr1Cs"
CONCURRENCY = 50
GOALS = {"warn": 1.15, "off": 1.15}
CONCURRENT_GOALS = {"warn": 0.8, "off": 0.9}


async def interleaved(calls: dict[str, Call], rounds: int) -> dict[str, float]:
    """Median seconds per call of each, the calls taking turns round by round."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            await fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


async def throughput(fn: Call, calls: int) -> float:
    """Calls per second of ``CONCURRENCY`` tasks sharing ``calls`` calls of ``fn``."""
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await fn()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return calls / (time.perf_counter() - t0)


async def concurrent(calls: dict[str, Call], rounds: int, per_round: int) -> dict[str, float]:
    """Under concurrency, each non-raw entry's calls/s as a fraction of raw's: the median over
    rounds of the ratio within a round (each round measures raw beside the others, in an
    order that rotates, so drift of the machine between rounds cancels); ``"raw"``: raw's
    median calls/s."""
    names = list(calls)
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names if name != "raw"}
    for turn in range(rounds):
        order = names[turn % len(names) :] + names[: turn % len(names)]
        here = {name: await throughput(calls[name], per_round) for name in order}
        for name, rate in here.items():
            rates[name].append(rate)
            if name != "raw":
                ratios[name].append(rate / here["raw"])
    out = {name: statistics.median(rs) for name, rs in ratios.items()}
    out["raw"] = statistics.median(rates["raw"])
    return out


def raw_calls(http: aiohttp.ClientSession, base: str) -> dict[str, Call]:
    auth = {"Authorization": "Bearer t"}  # what any client of the Platform sends

    async def get(url: str) -> Any:
        async with http.get(url, headers=auth) as r:
            return orjson.loads(await r.read())

    async def delete() -> Any:
        async with http.delete(f"{base}/workflow/{WORKFLOW}", headers=auth) as r:
            await r.read()
            return None

    return {
        "list": lambda: get(f"{base}/workflow?workspaceId=10&max=100"),
        "describe": lambda: get(f"{base}/workflow/{WORKFLOW}"),
        "delete": delete,
    }


def session_calls(tw: Tower) -> dict[str, Call]:
    return {
        "list": lambda: tw.list_workflows(workspace_id=10, max=100),
        "describe": lambda: tw.describe_workflow(workflow_id=WORKFLOW),
        "delete": lambda: tw.delete_workflow(workflow_id=WORKFLOW),
    }


async def one_repeat(
    raw: dict[str, Call], towers: dict[str, dict[str, Call]], rounds: int
) -> dict[str, float]:
    """Ratios to raw of this repeat: ``"<mode> <case>"`` -> ratio."""
    out: dict[str, float] = {}
    for case, n in (("list", max(rounds // 4, 30)), ("describe", rounds), ("delete", rounds)):
        calls = {"raw": raw[case]} | {mode: c[case] for mode, c in towers.items()}
        medians = await interleaved(calls, n)
        for mode in towers:
            out[f"{mode} {case}"] = medians[mode] / medians["raw"]
        out[f"raw {case} us"] = medians["raw"] * 1e6
    calls = {"raw": raw["describe"]} | {mode: c["describe"] for mode, c in towers.items()}
    rates = await concurrent(calls, 9, max(rounds, 500))
    for mode in towers:
        out[f"{mode} concurrent"] = rates[mode]
    out["raw concurrent calls/s"] = rates["raw"]
    return out


LABELS = {
    "list": "ListWorkflows(100)",
    "describe": "DescribeWorkflow",
    "delete": "DeleteWorkflow 204",
}


def report(repeats: list[dict[str, float]], modes: list[str]) -> None:
    def spread(key: str) -> str:
        values = [r[key] for r in repeats]
        return f"{statistics.median(values):.2f}x (repeats {', '.join(f'{v:.2f}' for v in values)})"

    for mode in modes:
        for case, label in LABELS.items():
            key = f"{mode} {case}"
            med = statistics.median(r[key] for r in repeats)
            raw_us = statistics.median(r[f"raw {case} us"] for r in repeats)
            verdict = "ok" if med <= GOALS[mode] else f"ABOVE goal {GOALS[mode]}x"
            print(
                f"session {mode:4} {label}: {spread(key)} of raw {raw_us:.0f} us "
                f"(goal <= {GOALS[mode]}x: {verdict})"
            )
        key = f"{mode} concurrent"
        med = statistics.median(r[key] for r in repeats)
        raw_rate = statistics.median(r["raw concurrent calls/s"] for r in repeats)
        goal = CONCURRENT_GOALS[mode]
        verdict = "ok" if med >= goal else f"BELOW goal {goal}x"
        print(
            f"session {mode:4} {CONCURRENCY} concurrent DescribeWorkflow calls/s: {spread(key)} "
            f"of raw {raw_rate:.0f}/s (goal >= {goal}x: {verdict})"
        )


async def main(rounds: int, repeats: int, spec: Path) -> None:
    runner, base = await serve(payloads())
    modes = ["warn", "off"]
    try:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as http:
            raw = raw_calls(http, base)
            towers: dict[str, dict[str, Call]] = {}
            async with (
                Tower(spec=str(spec), token="t", endpoint=base, rate_limit=None) as warn,
                Tower(
                    spec=str(spec), token="t", endpoint=base, rate_limit=None, validation="off"
                ) as off,
            ):
                towers = {"warn": session_calls(warn), "off": session_calls(off)}
                await concurrent(
                    {"raw": raw["describe"]} | {m: c["describe"] for m, c in towers.items()}, 1, 200
                )  # warm up
                gc.collect()
                results = []
                for i in range(repeats):
                    results.append(await one_repeat(raw, towers, rounds))
                    print(f"repeat {i + 1}/{repeats} done", file=sys.stderr)
                report(results, modes)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    import os
    import tempfile

    # a private document cache: the shared default may hold another version's entries
    os.environ.setdefault("TOWER_ASYNC_CACHE_DIR", tempfile.mkdtemp(prefix="bench-overhead-"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spec", type=Path, default=None)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.repeats, args.spec or spec_path()))
