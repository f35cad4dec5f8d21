"""``follow_log(method="log")`` end to end: ``GetWorkflowLog`` pages from the fake Platform.

The run clock only moves with ``fake.advance``; the follower polls on real time (a few ms),
and the test waits for it with bounded loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tower_async import Tower
from tower_async.orchestration import follow_log, launch
from tower_async.testing import FakePlatform

LOG_SIZE = 20_050  # 200 whole lines and half of one


@pytest.fixture
async def fake() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(rate_limit=None, log_size=LOG_SIZE) as platform:
        yield platform
    assert not platform.errors


async def _until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    for _ in range(int(limit / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def _download_lines(tw: Tower, wid: str, *, finished: bool = True) -> list[str]:
    """The complete lines of the downloaded log (a finished log ends its last line)."""
    body = await tw.download_workflow_log(workflow_id=wid)
    raw = await body.read()
    if finished:
        assert raw.endswith(b"\n")
    return raw.decode().split("\n")[:-1]


def _visible(fake: FakePlatform, wid: str) -> int:
    """Complete log lines the fake serves now."""
    return len(fake.state.log_entries(fake.state.workflows[wid]))


def _calls(fake: FakePlatform, operation_id: str):  # type: ignore[no-untyped-def]
    """A no-op fault rule whose ``fired`` counts the calls of ``operation_id``."""
    return fake.faults.add(operation_id, "latency", delay=0.0)


@pytest.mark.parametrize("max_length", [None, 700])
async def test_every_line_once_in_order_while_the_log_grows(
    fake: FakePlatform, tw: Tower, max_length: int | None
) -> None:
    log_calls = _calls(fake, "GetWorkflowLog")
    downloads = _calls(fake, "DownloadWorkflowLog")
    wid = await launch(tw, "hello")
    lines: list[str] = []
    follower = follow_log(
        tw, wid, method="log", poll_interval=0.005, max_interval=0.01, max_length=max_length
    )

    async def follow() -> None:
        async for line in follower:
            lines.append(line)

    task = asyncio.create_task(follow())
    await _until(lambda: log_calls.fired >= 2)
    assert lines == [] and not task.done()  # SUBMITTED: pending, nothing yet
    fake.advance(5)
    seen: list[int] = []
    for _ in range(5):  # RUNNING, in steps of 10 s: the log grows by a sixth each time
        fake.advance(10)
        want = _visible(fake, wid)
        assert want > (seen[-1] if seen else 0)
        await _until(lambda want=want: len(lines) >= want)  # type: ignore[misc]
        assert len(lines) == want  # nothing past what is served, nothing twice
        assert not task.done()
        seen.append(want)
    fake.advance(10)  # SUCCEEDED
    await asyncio.wait_for(task, 5)
    assert lines == await _download_lines(tw, wid)  # every line exactly once, in order
    assert len(lines) == 201 + 1 and lines[-1] == "Execution complete -- Goodbye"
    numbers = [int(line.split("log line ")[1][:9]) for line in lines[:-1]]
    assert numbers == list(range(201))
    assert downloads.fired == 1  # only the test's own download: the follower used the API


async def test_a_cancelled_run_ends_with_its_closing_line(fake: FakePlatform, tw: Tower) -> None:
    wid = await launch(tw, "hello")
    lines: list[str] = []

    async def follow() -> None:
        async for line in follow_log(
            tw, wid, method="log", poll_interval=0.005, max_interval=0.01, max_length=1000
        ):
            lines.append(line)

    fake.advance(5 + 20)
    task = asyncio.create_task(follow())
    want = _visible(fake, wid)
    await _until(lambda: len(lines) >= want)
    await tw.cancel_workflow(workflow_id=wid)
    await asyncio.wait_for(task, 5)
    assert lines == await _download_lines(tw, wid)
    assert lines[-1] == "WARN: Execution aborted by user"
    assert len(set(lines)) == len(lines)


async def test_a_finished_run_is_read_in_pages_without_waiting(
    fake: FakePlatform, tw: Tower
) -> None:
    wid = await launch(tw, "hello")
    fake.advance(1000)
    log_calls = _calls(fake, "GetWorkflowLog")
    lines = [
        line
        async for line in follow_log(
            tw, wid, method="log", poll_interval=60, max_interval=60, max_length=5000
        )
    ]  # a 60 s pause anywhere would trip the test timeout
    assert lines == await _download_lines(tw, wid)
    assert log_calls.fired <= 202 * 100 // 5000 + 3


async def test_a_backlog_is_read_at_once_while_the_run_is_active(
    fake: FakePlatform, tw: Tower
) -> None:
    """Pages cut by ``maxLength`` are followed by the next one at once, not after a poll."""
    wid = await launch(tw, "hello")
    fake.advance(5 + 30)  # half the log is there before the follower starts
    want = _visible(fake, wid)
    lines: list[str] = []

    async def follow() -> None:
        async for line in follow_log(
            tw, wid, method="log", poll_interval=30, max_interval=30, max_length=1000
        ):
            lines.append(line)

    task = asyncio.create_task(follow())
    try:
        await _until(lambda: len(lines) >= want)  # ten pages in well under one poll interval
        assert lines == await _download_lines(tw, wid, finished=False)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
