"""bulk_launch on a shared Redis ledger: 3 processes over one input launch each item exactly
once (the standalone fake's run list by run name), also when one of them is SIGKILLed midway
and the others (rerun once its lease lapsed) finish its items."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_bulk_kill import Fake, _env, _start_fake, wait_for_line

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "bulk_child.py"
ITEMS = 300
LEASE = 2.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    yield from _start_fake()


def worker(fake: Fake, ledger: str, prefix: str, cache: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(CHILD), "--url", fake.url, "--token", fake.token]
    cmd += ["--journal", ledger, "--prefix", prefix, "--cache", str(cache)]
    cmd += ["--items", str(ITEMS), "--concurrency", "8", "--rate", "150"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO)


def shared(redis_url: str, tag: str) -> tuple[str, str]:
    """A fresh run-name prefix and a ledger URL named after it, with a short lease."""
    prefix = f"{tag}{secrets.token_hex(3)}"
    return prefix, f"{redis_url}?ledger={prefix}&lease={LEASE}"


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    return [(p.wait(timeout=60), p.communicate(timeout=60)[0]) for p in procs]


def assert_exactly_once(fake: Fake, prefix: str) -> None:
    runs = fake.runs_named(f"{prefix}-")
    assert set(runs) == {f"{prefix}-{i:04d}" for i in range(ITEMS)}  # nothing lost
    assert set(runs.values()) == {1}, {n: c for n, c in runs.items() if c > 1}  # none twice


@pytest.mark.timeout(90)
def test_three_processes_launch_each_item_exactly_once(
    fake: Fake, redis_url: str, tmp_path: Path
) -> None:
    prefix, ledger = shared(redis_url, "rl")
    results = finish([worker(fake, ledger, prefix, tmp_path) for _ in range(3)])
    assert all("ERROR" not in out for _, out in results), results
    assert_exactly_once(fake, prefix)
    # the work was shared: each process launched some, and skipped the others' items
    launched = [out.count('"launched"') for _, out in results]
    assert all(launched), results


@pytest.mark.timeout(90)
def test_a_killed_worker_s_items_are_resolved_by_the_others(
    fake: Fake, redis_url: str, tmp_path: Path
) -> None:
    prefix, ledger = shared(redis_url, "rk")
    victim = worker(fake, ledger, prefix, tmp_path)
    wait_for_line(victim, "FIRST")
    others = [worker(fake, ledger, prefix, tmp_path) for _ in range(2)]
    time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    results = finish(others)
    assert all("ERROR" not in out for _, out in results), results
    for _ in range(4):  # after the victim's lease lapsed, rerun until every item has a run
        if all(code == 0 for code, _ in results):
            break
        time.sleep(LEASE + 0.5)
        results = finish([worker(fake, ledger, prefix, tmp_path) for _ in range(2)])
    assert all(code == 0 for code, _ in results), results
    assert_exactly_once(fake, prefix)
