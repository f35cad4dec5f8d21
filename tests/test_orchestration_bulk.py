"""Bulk launches against the fake Platform: faults, accounting, journal and resume."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tower_async import Tower
from tower_async.errors import LaunchResponseError
from tower_async.orchestration import (
    BulkProgress,
    Journal,
    LaunchOutcome,
    LaunchSpec,
    bulk_launch,
)
from tower_async.testing import FakePlatform

RATE = 2000  # fake and client limit for these tests (the real 20/s is bench/'s business)


@pytest.fixture(scope="module")
def spec_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the module: the document is parsed once, not per test."""
    return tmp_path_factory.mktemp("spec-cache")


@pytest.fixture
async def fake() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(rate_limit=RATE) as platform:
        yield platform
    assert not platform.errors


async def _session(fake: FakePlatform, cache: Path, token: str | None = None) -> Tower:
    tw = Tower(
        token=token or fake.token,
        endpoint=fake.url,
        workspace="my-org/production",
        cache_dir=cache,
        rate_limit=RATE * 0.9,
    )
    await tw.open()
    return tw


@pytest.fixture
async def tw(fake: FakePlatform, spec_cache: Path) -> AsyncIterator[Tower]:
    session = await _session(fake, spec_cache)
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
    skip: dict[str, Any] = {"concurrency": 8, "journal": journal, "on_uncertain": "skip"}
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
    fake: FakePlatform, tmp_path: Path, spec_cache: Path
) -> None:
    """Cancel the whole bulk launch with requests in flight, then rerun with the journal.

    No timing decides what is in flight at the cancel: from the 100th outcome on, the fake
    holds every launch request (the first ``HELD_AFTER`` processed, then unanswered; the rest
    unread), and the run is cancelled once all 16 workers sit in such a request.
    """
    journal = tmp_path / "crash.jsonl"
    held_after = 8  # processed by the server, the answer never comes: launched, unknown
    tw = await _session(fake, spec_cache)
    seen: list[LaunchOutcome] = []

    def hold_launches() -> None:
        fake.faults.add(
            "CreateWorkflowLaunch", "latency", delay=600, when="after", count=held_after
        )
        fake.faults.add("CreateWorkflowLaunch", "latency", delay=600)  # never processed

    async def run() -> None:
        async for outcome in bulk_launch(
            tw, specs(300), concurrency=16, journal=journal, on_uncertain="reconcile"
        ):
            seen.append(outcome)
            if len(seen) == 100:
                hold_launches()

    task = asyncio.create_task(run())
    for _ in range(3000):  # bounded: 30 s; normally a fraction of a second
        if fake.faults.count_fired("latency") >= 16 or task.done():
            break
        await asyncio.sleep(0.01)
    assert not task.done() and fake.faults.count_fired("latency") == 16
    task.cancel()  # "Ctrl-C": 16 launches in flight, 8 of them already launched
    with pytest.raises(asyncio.CancelledError):
        await task
    await tw.close()
    fake.faults.clear()  # the held requests stay held: the unread ones are never processed
    crashed_at = len(fake.state.launches)
    assert 100 <= crashed_at < 300
    entries = Journal(journal).load()
    in_doubt = [k for k, e in entries.items() if e.in_doubt]
    assert len(in_doubt) == 16  # exactly the launches whose outcome the crash left unknown
    journaled = sum(e.status == "launched" for e in entries.values())
    assert journaled + held_after == crashed_at  # every other server launch is journaled
    at_crash = {r.run_name: r.workflow_id for r in fake.state.launches}

    tw2 = await _session(fake, spec_cache)
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
    found = {by_key[k].spec.run_name: by_key[k].workflow_id for k in in_doubt}
    # the 8 the server had launched are found (the same run), the 8 it never read launched
    assert (
        len({n: w for n, w in found.items() if n is not None and at_crash.get(n) == w})
        == held_after
    )
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


async def test_launches_spread_over_several_tokens(fake: FakePlatform, spec_cache: Path) -> None:
    tokens = [fake.token, fake.add_token(), fake.add_token()]
    sessions = [await _session(fake, spec_cache, t) for t in tokens]
    try:
        out = [o async for o in bulk_launch(sessions, specs(60), concurrency=4)]
    finally:
        for s in sessions:
            await s.close()
    assert Counter(o.status for o in out) == {"launched": 60}
    used = Counter(r.token for r in fake.state.launches)
    assert set(used) == set(tokens)


class GateLimiter:
    """Grants every call while open; once closed, callers wait (as behind a busy bucket)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def acquire(self) -> None:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1


async def _wait_until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_items_waiting_on_the_bucket_at_ctrl_c_are_not_sent_and_relaunched(
    fake: FakePlatform, tmp_path: Path, spec_cache: Path
) -> None:
    """Issue 10, case 1: 'started' only once the bucket granted the call."""
    gate = GateLimiter()
    journal = tmp_path / "j.jsonl"
    tw = Tower(
        token=fake.token,
        endpoint=fake.url,
        workspace="my-org/production",
        cache_dir=spec_cache,
        limiter=gate,
    )
    await tw.open()
    seen: list[LaunchOutcome] = []

    async def run() -> None:
        async for outcome in bulk_launch(tw, specs(200), concurrency=16, journal=journal):
            seen.append(outcome)

    task = asyncio.create_task(run())
    await _wait_until(lambda: len(fake.state.launches) >= 30, "30 launches")
    gate.open.clear()  # the bucket is empty: the workers queue up behind it
    await _wait_until(  # every worker waits for the bucket; nothing is in flight
        lambda: gate.waiting == 16 and len(seen) == len(fake.state.launches), "16 waiting"
    )
    task.cancel()  # Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await task
    await tw.close()
    entries = Journal(journal).load()
    assert [k for k, e in entries.items() if e.in_doubt] == []  # nothing left the process
    not_sent = [k for k, e in entries.items() if e.status == "not_sent"]
    assert 1 <= len(not_sent) <= 16  # the ones queued behind the bucket
    assert {r.run_name for r in fake.state.launches} == {
        k for k, e in entries.items() if e.status == "launched"
    }
    tw2 = await _session(fake, spec_cache)
    try:
        async with bulk_launch(tw2, specs(200), concurrency=16, journal=journal) as outcomes:
            rerun = [o async for o in outcomes]
    finally:
        await tw2.close()
    st = Counter(o.status for o in rerun)
    assert st == {"skipped": len(seen), "launched": 200 - len(seen)}
    assert not any(o.reconciled for o in rerun)  # nothing was in doubt
    assert set(launched_per_name(fake).values()) == {1} and len(fake.state.launches) == 200


UNREADABLE_WARNS = pytest.mark.filterwarnings("ignore::tower_async.TowerValidationWarning")


@UNREADABLE_WARNS  # the [] answer also fails validation ("warn" mode)
@pytest.mark.parametrize("variant", ["object", "array", "empty", "html"])
async def test_launch_raises_a_library_error_on_an_unreadable_2xx(
    fake: FakePlatform, tw: Tower, variant: str
) -> None:
    fake.faults.add("CreateWorkflowLaunch", "unreadable", variant=variant, count=1)
    with pytest.raises(LaunchResponseError) as info:
        await tw.launch("nf-core/rnaseq", run_name="u1")
    assert info.value.may_have_been_processed and "workflowId" in str(info.value)
    assert len(fake.state.launches_named("u1")) == 1  # it did launch


@UNREADABLE_WARNS
async def test_unreadable_2xx_is_uncertain_never_failed_and_reconciled(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    """Issue 10, case 2: 200 {} / [] / empty / HTML -> uncertain (skip) or found (default)."""
    for variant in ("object", "array", "empty", "html"):
        fake.faults.add("CreateWorkflowLaunch", "unreadable", variant=variant, count=1)
    journal = tmp_path / "skip.jsonl"
    opts: dict[str, Any] = {"concurrency": 2, "journal": journal, "on_uncertain": "skip"}
    first = [o async for o in bulk_launch(tw, specs(6, prefix="a"), **opts)]
    assert Counter(o.status for o in first) == {"uncertain": 4, "launched": 2}
    assert all(o.may_have_launched for o in first if o.status == "uncertain")
    second = [o async for o in bulk_launch(tw, specs(6, prefix="a"), **opts)]
    assert all(o.status == "skipped" for o in second)
    assert len(fake.state.launches) == 6  # 6 POSTs for 6 items, none re-sent

    for variant in ("object", "array", "empty", "html"):
        fake.faults.add("CreateWorkflowLaunch", "unreadable", variant=variant, count=1)
    default = [
        o
        async for o in bulk_launch(
            tw, specs(6, prefix="b"), journal=tmp_path / "d.jsonl", reconcile_delay=0.0
        )
    ]
    assert Counter(o.status for o in default) == {"launched": 6}
    assert sum(o.reconciled for o in default) == 4
    assert set(launched_per_name(fake).values()) == {1} and len(fake.state.launches) == 12


async def test_items_without_run_name_get_a_findable_derived_one(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    def unnamed(n: int) -> Iterator[LaunchSpec]:
        return (LaunchSpec("nf-core/rnaseq", params={"i": i}) for i in range(n))

    fake.faults.add("CreateWorkflowLaunch", "drop_after", count=3)
    journal = tmp_path / "j.jsonl"
    kw: dict[str, Any] = {"journal": journal, "reconcile_delay": 0.0, "concurrency": 4}
    out = [o async for o in bulk_launch(tw, unnamed(20), run_names="bulk-{digest}", **kw)]
    assert Counter(o.status for o in out) == {"launched": 20}
    assert sum(o.reconciled for o in out) == 3
    names = launched_per_name(fake)
    assert len(names) == 20 and set(names.values()) == {1}
    assert all(n.startswith("bulk-") and len(n) == 17 for n in names)
    # without run names, a launch in doubt cannot be settled: reported, never relaunched
    fake.faults.add("CreateWorkflowLaunch", "drop_after", count=2)
    kw["journal"] = tmp_path / "plain.jsonl"
    plain = [o async for o in bulk_launch(tw, unnamed(25), **kw)]
    unresolved = [o for o in plain if o.unresolved]
    assert len(unresolved) == 2 and all(o.status == "uncertain" for o in unresolved)
    assert all("run_names=" in (o.error or "") for o in unresolved)
    progress: list[BulkProgress] = []
    again = [o async for o in bulk_launch(tw, unnamed(25), on_progress=progress.append, **kw)]
    assert sum(o.unresolved for o in again) == 2
    assert progress[-1].unresolved == 2 and progress[-1].not_launched == 2
    assert "2 may have launched and could not be checked" in progress[-1].summary()
    assert len(fake.state.launches) == 20 + 25


async def test_journal_passed_unopened_is_opened_fsynced_and_closed(
    fake: FakePlatform, tw: Tower, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10, case 4: ``started`` is on disk before its POST leaves the process."""
    events: list[tuple[str, str]] = []
    journal = Journal(tmp_path / "j.jsonl")
    assert journal.fsync  # the default
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return  # the new journal's directory entry
        last = journal.path.read_bytes().splitlines()[-1]
        events.append(("fsync", orjson.loads(last)["key"]))

    real_launch = fake.state.launch

    def launch(ws: int | None, body: dict[str, Any], token: str) -> Any:
        events.append(("launch", body["runName"]))
        return real_launch(ws, body, token)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(fake.state, "launch", launch)
    out = [o async for o in bulk_launch(tw, specs(30), concurrency=8, journal=journal)]
    assert Counter(o.status for o in out) == {"launched": 30}
    assert not journal.is_open  # opened here, so closed here
    fsynced = [k for kind, k in events if kind == "fsync"]
    assert sorted(fsynced) == sorted(o.key for o in out)  # one fsync per started record
    for key in fsynced:
        assert events.index(("fsync", key)) < events.index(("launch", key))
    events.clear()
    quick = Journal(tmp_path / "quick.jsonl", fsync=False)
    assert [o async for o in bulk_launch(tw, specs(5, prefix="q"), journal=quick)]
    assert [e for e in events if e[0] == "fsync"] == []


async def test_power_loss_after_the_last_fsync_launches_nothing_twice(
    fake: FakePlatform, tw: Tower, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the OS had not written at the last fsync is gone; the rerun reconciles."""
    path = tmp_path / "j.jsonl"
    sizes: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        sizes.append(path.stat().st_size)

    monkeypatch.setattr(os, "fsync", fsync)
    first = [o async for o in bulk_launch(tw, specs(40), concurrency=8, journal=path)]
    assert Counter(o.status for o in first) == {"launched": 40}
    with path.open("r+b") as fh:
        fh.truncate(sizes[-1])  # the page cache after the last fsync is lost
    entries = Journal(path).load()
    assert sum(e.in_doubt for e in entries.values()) >= 1
    rerun = [o async for o in bulk_launch(tw, specs(40), concurrency=8, journal=path)]
    assert all(o.ok for o in rerun)
    assert sum(o.reconciled for o in rerun) == sum(e.in_doubt for e in entries.values())
    assert len(fake.state.launches) == 40 and set(launched_per_name(fake).values()) == {1}


async def test_break_out_of_a_still_referenced_loop_stops_launching(
    fake: FakePlatform, tw: Tower
) -> None:
    """Issue 10, case 5: outcomes are made only as fast as they are consumed."""
    fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.01)
    launches = bulk_launch(tw, specs(500), concurrency=4)
    async for _ in launches:
        if launches.progress.done == 10:
            break
    at_break = len(fake.state.launches)
    await asyncio.sleep(0.15)  # >> the 10-20 ms latency of a request in flight
    settled = len(fake.state.launches)
    assert settled - at_break <= 4  # at most the launches in flight at the break
    await asyncio.sleep(0.15)  # >> the 10-20 ms latency of a request in flight
    assert len(fake.state.launches) == settled  # and nothing after them
    await launches.aclose()


@pytest.mark.parametrize("how", ["break", "exception", "cancel", "aclosing"])
async def test_leaving_the_context_stops_launching_at_once(
    fake: FakePlatform, tw: Tower, tmp_path: Path, how: str
) -> None:
    fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.02, when="after")
    path = tmp_path / "j.jsonl"
    seen: list[LaunchOutcome] = []

    async def body() -> None:
        if how == "aclosing":
            async with contextlib.aclosing(bulk_launch(tw, specs(300), journal=path)) as it:
                async for outcome in it:
                    seen.append(outcome)
                    if len(seen) == 20:
                        break
            return
        async with bulk_launch(tw, specs(300), journal=path) as outcomes:
            async for outcome in outcomes:
                seen.append(outcome)
                if len(seen) == 20:
                    if how == "exception":
                        raise KeyError("boom")
                    if how == "break":
                        break
                    await asyncio.sleep(10)  # cancelled below

    task = asyncio.create_task(body())
    if how == "cancel":
        await _wait_until(lambda: len(seen) >= 20, "20 outcomes")
        task.cancel()
    with contextlib.suppress(KeyError, asyncio.CancelledError):
        await task
    at_exit = len(fake.state.launches)
    with Journal(path) as jr:  # the lock was released
        entries = jr.entries
    in_doubt = sum(e.in_doubt for e in entries.values())  # cancelled mid-request
    await asyncio.sleep(0.15)  # >> the 10-20 ms latency of a request in flight
    settled = len(fake.state.launches)
    assert settled - at_exit <= in_doubt  # only requests already sent may still land
    await asyncio.sleep(0.15)  # >> the 10-20 ms latency of a request in flight
    assert len(fake.state.launches) == settled < 300  # and nothing is launched after them
    known = {k for k, e in entries.items() if e.status == "launched" or e.in_doubt}
    assert {r.run_name for r in fake.state.launches} <= known  # nothing lost
