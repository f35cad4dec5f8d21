"""``relaunch_failed`` killed with SIGKILL mid-way, then rerun with its journal: every failed run
of the batch is relaunched exactly once (the client runs in a child process, the fake Platform
in another: ``python -m tower_async.testing``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests import zygote
from tower_async import Tower
from tower_async.orchestration import Journal, LaunchSpec, bulk_launch, wait_for_runs

REPO = Path(__file__).resolve().parents[1]
N, EVERY = 100, 10  # a batch of 100 runs, every 10th fails
CHILD_RATE = 30  # calls/s of the relaunching child: slow enough to be killed mid-way
FAKE_ARGS = ("--port", "0", "--rate-limit", "0", "--submitted", "0.01", "--running", "0.02")


def child(url: str, token: str, batch: str, journal: str) -> None:
    """The relaunching client (run as ``python tests/test_relaunch_kill.py ...``), on the
    run's user cache (``$TOWER_ASYNC_CACHE_DIR``), where the fake's document is filed."""

    async def run() -> None:
        async with Tower(
            token=token,
            endpoint=url,
            workspace="my-org/production",
            rate_limit=CHILD_RATE,
        ) as tw:
            async for o in tw.relaunch_failed(
                batch, journal=journal, concurrency=4, reconcile_delay=0.05
            ):
                print(o.relaunch_of, o.status, o.workflow_id, flush=True)

    asyncio.run(run())


@pytest.fixture
def standalone_fake() -> Iterator[tuple[str, str]]:
    proc = zygote.Popen(
        [sys.executable, "-m", "tower_async.testing", *FAKE_ARGS],
        stdout=zygote.PIPE,
        stderr=zygote.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("URL: ")
        token = proc.stdout.readline().strip().removeprefix("TOKEN: ")
        assert url.startswith("http://127.0.0.1:") and token
        yield url, token
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def _spawn(url: str, token: str, tmp_path: Path) -> zygote.Popen:
    args = [url, token, str(tmp_path / "batch.jsonl"), str(tmp_path / "relaunch.jsonl")]
    return zygote.Popen(
        [sys.executable, __file__, *args],
        stdout=zygote.PIPE,
        stderr=zygote.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _journal_statuses(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    out: Counter[str] = Counter()
    for line in path.read_bytes().splitlines():
        try:
            out[str(orjson.loads(line).get("status"))] += 1
        except orjson.JSONDecodeError:
            continue  # a torn last line
    return out


async def _batch(tw: Tower, tmp_path: Path) -> dict[str, str]:
    """Launch the batch, wait for it; ``{workflow id: final status}``."""
    specs = (
        LaunchSpec("nf-core/rnaseq", params={"i": i, "fail": i % EVERY == 7}, run_name=f"k{i:03d}")
        for i in range(N)
    )
    ids = [
        o.workflow_id
        async for o in bulk_launch(tw, specs, journal=tmp_path / "batch.jsonl", concurrency=8)
        if o.workflow_id
    ]
    assert len(ids) == N
    return {r.workflow_id: r.status async for r in wait_for_runs(tw, ids, poll_interval=0.05)}


@pytest.mark.timeout(180)
async def test_sigkill_mid_relaunch_then_rerun_relaunches_each_failed_run_once(
    standalone_fake: tuple[str, str], tmp_path: Path
) -> None:
    url, token = standalone_fake
    async with Tower(
        token=token,
        endpoint=url,
        workspace="my-org/production",
        cache_dir=tmp_path / "c0",
        rate_limit=None,
    ) as tw:
        states = await _batch(tw, tmp_path)
        failed = {w for w, s in states.items() if s == "FAILED"}
        assert len(failed) == N // EVERY
        sessions = {}
        async for item in tw.list_workflows.items(workspace_id=tw.workspace_id):
            sessions[item["workflow"]["id"]] = item["workflow"]["sessionId"]

        journal = tmp_path / "relaunch.jsonl"
        first = _spawn(url, token, tmp_path)
        deadline = time.monotonic() + 60
        while _journal_statuses(journal)["launched"] < 3 and first.poll() is None:
            assert time.monotonic() < deadline, "the child made no progress"
            await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        at_kill = _journal_statuses(journal)
        assert 3 <= at_kill["launched"] < len(failed)  # killed with relaunches still to do

        second = _spawn(url, token, tmp_path)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        reported = [line.split() for line in out.splitlines()]
        assert {r[0] for r in reported} == failed and {r[1] for r in reported} <= {
            "launched",
            "skipped",
        }

        runs = [
            item["workflow"] async for item in tw.list_workflows.items(workspace_id=tw.workspace_id)
        ]
    assert len(runs) == N + len(failed)  # nothing doubled, nothing lost
    resumed = Counter(r["sessionId"] for r in runs if r.get("resume"))
    assert resumed == Counter({sessions[w]: 1 for w in failed})
    by_id = {r["id"]: r for r in runs}
    links = Journal(journal).load()
    assert set(links) == {f"relaunch:{w}" for w in failed}
    for key, entry in links.items():
        assert entry.status == "launched" and entry.workflow_id in by_id
        original = key.removeprefix("relaunch:")
        new = by_id[entry.workflow_id]
        assert new["sessionId"] == sessions[original] and new["resume"] is True
        assert new["runName"] == by_id[original]["runName"] + "-r1"


if __name__ == "__main__":
    child(*sys.argv[1:5])
