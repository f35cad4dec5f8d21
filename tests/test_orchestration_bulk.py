"""Bulk launches against the fake Platform: faults, accounting, journal and resume."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from tower_async import Tower
from tower_async.orchestration import (
    BulkProgress,
    Journal,
    LaunchOutcome,
    LaunchSpec,
    bulk_launch,
)
from tower_async.testing import FakePlatform

RATE = 400  # fake and client limit for these tests (the real 20/s is bench/'s business)


@pytest.fixture
async def fake() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(rate_limit=RATE) as platform:
        yield platform
    assert not platform.errors


async def _session(fake: FakePlatform, tmp_path: Path, token: str | None = None) -> Tower:
    tw = Tower(
        token=token or fake.token,
        endpoint=fake.url,
        workspace="my-org/production",
        cache_dir=tmp_path / "cache",
        rate_limit=RATE * 0.9,
    )
    await tw.open()
    return tw


@pytest.fixture
async def tw(fake: FakePlatform, tmp_path: Path) -> AsyncIterator[Tower]:
    session = await _session(fake, tmp_path)
    yield session
    await session.close()


def specs(n: int, *, prefix: str = "s") -> Iterator[LaunchSpec]:
    """A lazy generator, like rows read from a samplesheet."""
    for i in range(n):
        yield LaunchSpec(
            "nf-core/rnaseq",
            params={"sample": f"{prefix}{i:05d}"},
            run_name=f"{prefix}{i:05d}",
            labels=["bulk"],
        )


def launched_per_name(fake: FakePlatform) -> Counter[str]:
    return Counter(r.run_name for r in fake.state.launches)


async def test_bulk_launch_1000_with_faults_accounts_for_every_item_once(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    fake.faults.reseed(7)
    fake.faults.add("CreateWorkflowLaunch", "drop_after", probability=0.03)  # launched, no answer
    fake.faults.add("CreateWorkflowLaunch", "drop_before", probability=0.03)  # not processed
    fake.faults.add("CreateWorkflowLaunch", "status", status=503, probability=0.05)
    fake.faults.burst("CreateWorkflowLaunch", status=500, count=5)  # may have been processed
    fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.01, probability=0.2)
    progress: list[int] = []

    def on_progress(p: BulkProgress) -> None:
        progress.append(p.done)

    outcomes: list[LaunchOutcome] = []
    async for outcome in bulk_launch(
        tw,
        specs(1000),
        concurrency=24,
        journal=tmp_path / "journal.jsonl",
        on_uncertain="reconcile",
        reconcile_delay=0.0,
        on_progress=on_progress,
    ):
        outcomes.append(outcome)

    assert sorted(o.index for o in outcomes) == list(range(1000))  # each item exactly once
    assert progress == list(range(1, 1001))
    by_status = Counter(o.status for o in outcomes)
    assert by_status == {"launched": 1000}, [o.error for o in outcomes if o.status != "launched"]
    assert sum(o.reconciled for o in outcomes) >= 1  # drop_after found by runName
    assert fake.faults.count_fired("drop_after") >= 1
    per_name = launched_per_name(fake)
    assert len(per_name) == 1000 and set(per_name.values()) == {1}  # no duplicate
    ids = {o.workflow_id for o in outcomes}
    assert ids == {r.workflow_id for r in fake.state.launches}
    labels = [lab for lab in fake.state.labels.values() if lab.name == "bulk"]
    assert len(labels) == 1


async def test_skip_policy_reports_uncertain_and_never_relaunches(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    fake.faults.reseed(3)
    fake.faults.add("CreateWorkflowLaunch", "drop_after", probability=0.1)
    fake.faults.burst("CreateWorkflowLaunch", status=400, count=2)
    journal = tmp_path / "j.jsonl"
    skip = {"concurrency": 8, "journal": journal, "on_uncertain": "skip"}
    first = [o async for o in bulk_launch(tw, specs(200), **skip)]
    st = Counter(o.status for o in first)
    assert st["failed"] == 2 and st["uncertain"] >= 5
    assert st["launched"] + st["failed"] + st["uncertain"] == 200
    for o in first:
        if o.status == "uncertain":
            assert o.may_have_launched and o.workflow_id is None and o.error
    fake.faults.clear()
    before = len(fake.state.launches)
    second = [o async for o in bulk_launch(tw, specs(200), **skip)]
    st2 = Counter(o.status for o in second)
    # launched and uncertain ones are skipped; only the two refused ones are launched now
    assert st2 == {"skipped": 198, "launched": 2}
    assert len(fake.state.launches) == before + 2
    assert max(launched_per_name(fake).values()) == 1
    skipped_uncertain = [o for o in second if o.status == "skipped" and o.may_have_launched]
    assert len(skipped_uncertain) == st["uncertain"]
    done = {o.key: o.workflow_id for o in first if o.status == "launched"}
    assert all(o.workflow_id == done[o.key] for o in second if o.key in done)


async def test_resume_after_crash_mid_run_launches_nothing_twice(
    fake: FakePlatform, tmp_path: Path
) -> None:
    """Cancel the whole bulk launch with requests in flight, then rerun with the journal."""
    journal = tmp_path / "crash.jsonl"
    fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.02)
    tw = await _session(fake, tmp_path)
    seen: list[LaunchOutcome] = []

    async def run() -> None:
        async for outcome in bulk_launch(
            tw, specs(300), concurrency=16, journal=journal, on_uncertain="reconcile"
        ):
            seen.append(outcome)

    task = asyncio.create_task(run())
    for _ in range(2000):
        if len(seen) >= 100:
            break
        await asyncio.sleep(0.005)
    task.cancel()  # "Ctrl-C": 16 launches in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    await tw.close()
    crashed_at = len(fake.state.launches)
    assert 100 <= crashed_at < 300
    await asyncio.sleep(0.1)  # let the server finish what it was doing
    fake.faults.clear()
    entries = Journal(journal).load()
    in_doubt = [k for k, e in entries.items() if e.in_doubt]
    assert in_doubt  # the crash left launches whose outcome is unknown

    tw2 = await _session(fake, tmp_path)
    try:
        rerun = [
            o
            async for o in bulk_launch(
                tw2, specs(300), concurrency=16, journal=journal, on_uncertain="reconcile"
            )
        ]
    finally:
        await tw2.close()
    assert sorted(o.index for o in rerun) == list(range(300))
    per_name = launched_per_name(fake)
    assert len(per_name) == 300 and set(per_name.values()) == {1}  # nothing lost, no duplicate
    by_key = {o.key: o for o in rerun}
    for key in in_doubt:
        assert by_key[key].status in ("launched", "skipped")
        assert by_key[key].workflow_id is not None
    assert sum(o.status == "skipped" for o in rerun) >= len(seen)


async def test_journal_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(
        orjson.dumps({"key": "a", "status": "launched", "workflowId": "W1"})
        + b"\n"
        + orjson.dumps({"key": "a", "status": "started"})  # never demotes a launch
        + b"\n"
        + b'{"key": "b", "sta'
    )
    with Journal(path) as jr:
        assert jr.entries["a"].status == "launched" and jr.entries["a"].workflow_id == "W1"
        assert "b" not in jr.entries
        jr.record("c", "failed", error="x")
    lines = path.read_bytes().split(b"\n")
    assert orjson.loads(lines[-2]) | {"at": 0} == {
        "key": "c",
        "status": "failed",
        "error": "x",
        "at": 0,
    }


async def test_async_input_unresolvable_items_and_duplicate_keys(
    fake: FakePlatform, tw: Tower
) -> None:
    async def rows() -> AsyncIterator[LaunchSpec]:
        yield LaunchSpec("hello", params={"a": 1})
        yield LaunchSpec("hello", params={"a": 1})  # same content: a second, distinct item
        yield LaunchSpec("no/such-pipeline", run_name="x")
        yield LaunchSpec("hello", compute_env="missing-ce", run_name="y")

    out = sorted([o async for o in bulk_launch(tw, rows(), concurrency=2)], key=lambda o: o.index)
    assert [o.status for o in out] == ["launched", "launched", "failed", "failed"]
    assert out[0].key != out[1].key and out[1].key.endswith("#2")
    assert "no/such-pipeline" in (out[2].error or "")
    assert not out[2].may_have_launched


async def test_lazy_consumption_and_early_stop(fake: FakePlatform, tw: Tower) -> None:
    pulled = 0

    def rows() -> Iterator[LaunchSpec]:
        nonlocal pulled
        for spec in specs(100_000):
            pulled += 1
            yield spec

    got = 0
    async for _ in bulk_launch(tw, rows(), concurrency=4):
        got += 1
        if got == 10:
            break
    await asyncio.sleep(0.05)
    assert pulled < 100  # a bounded queue between input and workers, not the whole input
    assert len(fake.state.launches) < 40


async def test_launches_spread_over_several_tokens(fake: FakePlatform, tmp_path: Path) -> None:
    tokens = [fake.token, fake.add_token(), fake.add_token()]
    sessions = [await _session(fake, tmp_path, t) for t in tokens]
    try:
        out = [o async for o in bulk_launch(sessions, specs(60), concurrency=4)]
    finally:
        for s in sessions:
            await s.close()
    assert Counter(o.status for o in out) == {"launched": 60}
    used = Counter(r.token for r in fake.state.launches)
    assert set(used) == set(tokens)
