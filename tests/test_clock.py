"""One clock (``tower_async.clock``): retries, waits, log following and bulk reconciling
sleep on ``tw.clock``, so timed behaviour runs on virtual time with no real waiting."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tower_async import WaitTimeout
from tower_async.clock import SYSTEM_CLOCK, Clock, SystemClock, VirtualClock, monotonic_of
from tower_async.orchestration import LaunchSpec, bulk_launch, follow_log, launch, wait_for_run
from tower_async.ratelimit import AdaptiveRate
from tower_async.retries import Clock as RetriesClock
from tower_async.retries import SystemClock as RetriesSystemClock
from tower_async.testing import FakePlatform

from .conftest import session_on


class FakeLinkedClock(VirtualClock):
    """Virtual time for the client that also moves the fake Platform's run clock, so a run
    progresses exactly as much as the client slept."""

    def __init__(self, fake: FakePlatform) -> None:
        super().__init__()
        self.fake = fake

    async def sleep(self, seconds: float) -> None:
        before = self.now
        await super().sleep(seconds)
        self.fake.advance(self.now - before)


def test_one_protocol_re_exported_where_it_was() -> None:
    assert RetriesClock is Clock and RetriesSystemClock is SystemClock
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(VirtualClock(), Clock)
    assert monotonic_of(SYSTEM_CLOCK) == SYSTEM_CLOCK.monotonic
    assert monotonic_of(time.monotonic) is time.monotonic
    with pytest.raises(TypeError):
        monotonic_of(42)  # type: ignore[arg-type]


async def test_virtual_clock_shares_one_timeline_between_sleepers() -> None:
    clock = VirtualClock()
    await asyncio.gather(clock.sleep(10), clock.sleep(10), clock.sleep(4))
    assert clock.monotonic() == 10  # concurrent sleeps overlap, they do not add up
    assert clock.slept == 24 and sorted(clock.sleeps) == [4, 10, 10]
    await clock.sleep(float("nan"))
    clock.advance(1)
    assert clock.monotonic() == 11
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_the_adaptive_controller_reads_a_clock_object() -> None:
    clock = VirtualClock(100)
    rate = AdaptiveRate(20, clock=clock)
    assert rate.throttled() is not None  # cut at t=100
    assert rate.succeeded() is None  # no rise before recover_after seconds
    clock.advance(rate.next_rise_after + 0.1)
    assert rate.succeeded() is not None


async def test_session_clock_is_the_one_given(fake: FakePlatform, tmp_path: Path) -> None:
    clock = VirtualClock()
    async with session_on(fake, tmp_path, clock=clock) as tw:
        assert tw.clock is clock
    async with session_on(fake, tmp_path) as tw:
        assert tw.clock is SYSTEM_CLOCK


async def test_wait_for_run_polls_on_virtual_time(fake: FakePlatform, tmp_path: Path) -> None:
    clock = FakeLinkedClock(fake)
    async with session_on(fake, tmp_path, clock=clock) as tw:
        wid = await launch(tw, "hello")
        started = time.monotonic()
        result = await wait_for_run(tw, wid, poll_interval=30, max_interval=120)
        real = time.monotonic() - started
    assert result.status == "SUCCEEDED"
    # the run needed minutes of (virtual) time, polled every 30 s or more (backing off)
    assert clock.slept >= 60 and len(clock.sleeps) >= 2
    assert all(30 <= s <= 120 for s in clock.sleeps)
    assert real < clock.slept  # nothing waited for real


async def test_wait_for_run_times_out_on_virtual_time(fake: FakePlatform, tmp_path: Path) -> None:
    clock = VirtualClock()  # the fake's runs do not move: the run stays SUBMITTED
    async with session_on(fake, tmp_path, clock=clock) as tw:
        wid = await launch(tw, "hello")
        with pytest.raises(WaitTimeout) as caught:
            await wait_for_run(tw, wid, poll_interval=60, timeout=3600)
    assert caught.value.last == {wid: "SUBMITTED"}
    assert clock.monotonic() >= 3600 and max(clock.sleeps) <= 3600


async def test_follow_log_polls_on_virtual_time(fake: FakePlatform, tmp_path: Path) -> None:
    clock = FakeLinkedClock(fake)
    async with session_on(fake, tmp_path, clock=clock) as tw:
        wid = await launch(tw, "hello")
        lines = [line async for line in follow_log(tw, wid, poll_interval=20, max_interval=40)]
        final = await tw.call("DescribeWorkflow", workflow_id=wid)
    assert lines and final["workflow"]["status"] in {"SUCCEEDED", "FAILED"}
    assert len(lines) == len(set(lines))  # every line once
    assert clock.slept >= 20 and all(s <= 40 for s in clock.sleeps)


async def test_bulk_reconcile_delay_sleeps_on_the_session_clock(
    fake: FakePlatform, tmp_path: Path
) -> None:
    clock = VirtualClock()
    # the first launch reaches the server but its answer is lost: reconciled by name
    fake.faults.add("CreateWorkflowLaunch", "drop_after", count=1)
    async with session_on(fake, tmp_path, clock=clock) as tw:
        specs = [LaunchSpec("hello", run_name="only-one")]
        async with bulk_launch(tw, specs, reconcile_delay=300) as outcomes:
            got = [o async for o in outcomes]
    assert [o.status for o in got] == ["launched"]
    assert 300 in clock.sleeps  # the 5-minute reconcile delay was virtual
    assert len(fake.state.launches) == 1
