"""The bulk-launch journal: last word per key, lock, durability flags, errors."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from tower_async import Tower
from tower_async.errors import JournalError, JournalLocked, TowerError
from tower_async.orchestration import Journal, JournalEntry, LaunchLedger, LaunchSpec, bulk_launch
from tower_async.orchestration.journal import merge_entry
from tower_async.testing import FakePlatform


def write(path: Path, *records: dict[str, str]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_last_word_per_key_never_forgets_a_launch_or_a_doubt(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write(
        path,
        {"key": "a", "status": "started"},
        {"key": "a", "status": "launched", "workflowId": "W1"},
        {"key": "a", "status": "failed"},  # never demotes a launch
        {"key": "b", "status": "started"},
        {"key": "b", "status": "not_sent"},  # does not clear the doubt
        {"key": "c", "status": "uncertain"},
        {"key": "c", "status": "failed"},  # settled (looked up, then refused)
        {"key": "d", "status": "not_sent"},
    )
    entries = Journal(path).load()
    assert (entries["a"].status, entries["a"].workflow_id) == ("launched", "W1")
    assert entries["b"].in_doubt and entries["b"].status == "started"
    assert not entries["c"].in_doubt and not entries["d"].in_doubt


def test_a_second_open_is_refused_naming_the_journal_and_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first = Journal(path).open()
    assert isinstance(first, LaunchLedger)
    with pytest.raises(JournalLocked) as info:
        Journal(path).open()
    assert info.value.pid == os.getpid()
    assert str(path) in str(info.value) and str(os.getpid()) in str(info.value)
    assert (tmp_path / "j.jsonl.lock").read_text().strip() == str(os.getpid())
    first.close()
    with Journal(path) as again:  # released on close
        again.record("k", "not_sent")
    assert not again.is_open


def test_records_need_an_open_journal_and_io_errors_are_library_errors(tmp_path: Path) -> None:
    jr = Journal(tmp_path / "j.jsonl")
    with pytest.raises(JournalError, match="is not open"):
        jr.record("k", "started")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(JournalError) as info:
        Journal(tmp_path / "dir.jsonl").open()
    assert "dir.jsonl" in str(info.value) and isinstance(info.value, TowerError)
    (tmp_path / "dir.jsonl").rmdir()
    Journal(tmp_path / "dir.jsonl").open().close()  # the failed open released its lock


def test_fsync_only_for_durable_records_and_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fsync(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")

    monkeypatch.setattr(os, "fsync", fsync)
    with Journal(tmp_path / "a.jsonl") as jr:
        jr.record("k", "started", durable=True)
        jr.record("k", "launched", workflow_id="W")
    assert calls == ["dir", "file"]  # the new file's directory entry, then `started`
    with Journal(tmp_path / "a.jsonl") as jr:
        jr.record("k2", "started", durable=True)
    assert calls == ["dir", "file", "file"]
    with Journal(tmp_path / "b.jsonl", fsync=False) as jr:
        jr.record("k", "started", durable=True)
    assert len(calls) == 3


async def test_bulk_launch_on_a_locked_journal_launches_nothing(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path):
        launches = bulk_launch(tw, [LaunchSpec("nf-core/rnaseq", run_name="x")], journal=path)
        with pytest.raises(JournalLocked):
            async with launches:
                pass
        with pytest.raises(JournalLocked):
            [o async for o in bulk_launch(tw, [LaunchSpec("hello")], journal=path)]
    assert fake.state.launches == []


def test_bad_options_are_refused_before_anything_runs(tw: Tower) -> None:
    from tower_async.errors import RequestValidationError

    for bad in (
        {"concurrency": 0},
        {"on_uncertain": "maybe"},
        {"run_names": "bulk-{nope}"},
        {"run_names": 3},
    ):
        with pytest.raises(RequestValidationError) as info:
            bulk_launch(tw, [], **bad)  # type: ignore[arg-type]
        assert "bulk_launch" in str(info.value) and next(iter(bad)) in str(info.value)


class MemoryLedger:
    """A third-party LaunchLedger whose every write is a (simulated) network round trip."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.records: list[tuple[str, str, bool]] = []
        self.entries: dict[str, JournalEntry] = {}
        self.opened = self.closed = 0

    @property
    def is_open(self) -> bool:
        return self.opened > self.closed

    async def acquire(self) -> None:
        self.opened += 1

    async def release(self) -> None:
        self.closed += 1

    async def lookup(self, key: str) -> JournalEntry | None:
        return self.entries.get(key)

    async def claim(self, key: str) -> bool:
        return key not in self.taken

    async def append(
        self,
        key: str,
        status: str,
        *,
        workflow_id: str | None = None,
        run_name: str | None = None,
        error: str | None = None,
        durable: bool = False,
        **extra: Any,
    ) -> None:
        await asyncio.sleep(0.001)
        self.records.append((key, status, durable))
        entry = JournalEntry(key, status, workflow_id, run_name, error)
        self.entries[key] = merge_entry(self.entries.get(key), entry)


async def test_bulk_launch_runs_on_any_launch_ledger(fake: FakePlatform, tw: Tower) -> None:
    ledger = MemoryLedger(taken={"m3"})
    assert isinstance(ledger, LaunchLedger)
    specs = [LaunchSpec("nf-core/rnaseq", run_name=f"m{i}") for i in range(10)]
    out = {o.key: o async for o in bulk_launch(tw, specs, journal=ledger, concurrency=4)}
    assert out["m3"].status == "skipped" and "claimed" in (out["m3"].error or "")
    assert sum(o.status == "launched" for o in out.values()) == 9
    assert (ledger.opened, ledger.closed) == (1, 1)
    for key in out.keys() - {"m3"}:
        mine = [(s, d) for k, s, d in ledger.records if k == key]
        assert mine == [("started", True), ("launched", False)]
    assert sorted(r.run_name for r in fake.state.launches) == sorted(out.keys() - {"m3"})
    again = [o async for o in bulk_launch(tw, specs, journal=ledger)]
    assert sum(o.status == "skipped" and o.ok for o in again) == 9


async def test_a_failing_progress_callback_stops_the_launch_and_frees_the_journal(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    def on_progress(progress: object) -> None:
        raise ZeroDivisionError("callback bug")

    specs = [LaunchSpec("nf-core/rnaseq", run_name=f"p{i}") for i in range(50)]
    path = tmp_path / "j.jsonl"
    with pytest.raises(ZeroDivisionError):
        async for _ in bulk_launch(tw, specs, journal=path, on_progress=on_progress):
            pass
    Journal(path).open().close()  # not locked any more
    launched = len(fake.state.launches)
    await asyncio.sleep(0.2)
    assert len(fake.state.launches) == launched < 50
