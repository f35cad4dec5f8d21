"""Stub generation and type-checking time (issue 13's goals: < 5 s and < 60 s).

generate: ``python -m tower_async stubs --spec PATH`` in a fresh process, with an empty schema
          cache (parse + validate + patch + generate + write) and with the document cached;
mypy:     ``mypy --strict`` over a small program using the stubs, cold and warm cache; the
          same program without stubs (every operation a BoundOperation) as the baseline.

    python bench/bench_stubs.py [--runs 3] [--version 1.181.0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, median, spec_path

PROGRAM = """\
from tower_async import Tower

async def main(tw: Tower) -> None:
    page = await tw.list_workflows(max=10)
    async for item in tw.list_workflows.items(max_items=5):
        print(item.get("workflow"))
    run = await tw.describe_workflow(workflow_id="x")
    print(page.get("totalSize"), run.get("workflow"))
"""


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode not in (0, 1) or "error:" in done.stdout:
        raise SystemExit(f"{cmd} failed:\n{done.stdout}{done.stderr}")
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--version", default="1.181.0")
    args = p.parse_args()
    path = spec_path(args.version)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prog.py").write_text(PROGRAM)
        env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
        env["PYTHONPATH"] = str(REPO)
        gen = [sys.executable, "-m", "tower_async", "stubs", "--spec", str(path)]
        gen += ["--out", str(root / "site")]
        cold = [
            timed([*gen, "--cache-dir", str(root / f"c{i}")], env, root) for i in range(args.runs)
        ]
        warm = [timed([*gen, "--cache-dir", str(root / "c0")], env, root) for _ in range(args.runs)]
        mypy = [sys.executable, "-m", "mypy", "--strict", "prog.py", "--cache-dir"]
        typed = {**env, "PYTHONPATH": os.pathsep.join([str(root / "site"), str(REPO)])}
        checks = {}
        for label, e in (("with stubs", typed), ("without stubs", env)):
            first = [timed([*mypy, str(root / f"m{label}{i}")], e, root) for i in range(args.runs)]
            again = [timed([*mypy, str(root / f"m{label}0")], e, root) for _ in range(args.runs)]
            checks[label] = (median(first), median(again))
    print(
        f"generate {args.version}: {median(cold):.2f} s (empty cache), {median(warm):.2f} s "
        "(document cached); goal < 5 s"
    )
    (c, w), (bc, bw) = checks["with stubs"], checks["without stubs"]
    print(
        f"mypy --strict over a user program: {c:.2f} s cold / {w:.2f} s warm cache "
        f"({c / bc:.2f}x / {w / bw:.2f}x the same program without stubs); goal < 60 s"
    )


if __name__ == "__main__":
    main()
