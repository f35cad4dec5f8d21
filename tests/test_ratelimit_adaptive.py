"""The adaptive bucket: :class:`AdaptiveRate` on a fake clock, and its wiring into the bucket,
the registry and ``send_with_retries``."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from tower_async.ratelimit import (
    AdaptiveRate,
    AiolimiterLimiter,
    LimiterRegistry,
    RateFeedback,
    UnlimitedLimiter,
    token_key,
)
from tower_async.retries import RetryPolicy, send_with_retries

TOKEN = "eyJ0aWQiOiAxMjM0NX0uc2VjcmV0LXRva2VuLWE"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Resp:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class SleeplessClock:
    """The retry loop's clock: sleeps return at once."""

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def controller(clock: Clock, limit: float = 20, **kwargs: float) -> AdaptiveRate:
    return AdaptiveRate(limit, clock=clock, **kwargs)


# -- decrease --------------------------------------------------------------------------------


def test_a_429_cuts_the_rate_once_per_window() -> None:
    clock = Clock()
    rate = controller(clock)
    assert rate.throttled() == pytest.approx(14)  # x 0.7
    # the in-flight burst of the same window counts once
    for _ in range(10):
        clock.advance(0.05)
        assert rate.throttled() is None
    assert rate.rate == pytest.approx(14)
    clock.advance(0.6)  # 1.1 s after the cut
    assert rate.throttled() == pytest.approx(9.8)


def test_retry_after_widens_the_window_but_is_capped() -> None:
    clock = Clock()
    rate = controller(clock)
    assert rate.throttled(retry_after=3) is not None
    clock.advance(2.5)
    assert rate.throttled() is None  # the server said 3 s: still the same episode
    clock.advance(0.6)
    assert rate.throttled() is not None
    clock.advance(5)  # a huge hint holds at most 60 s
    assert rate.throttled(retry_after=3600) is not None
    clock.advance(60.1)
    assert rate.throttled() is not None
    # a zero hint ("Wait 0secs") changes nothing: the window is the floor
    clock.advance(5)
    assert rate.throttled(retry_after=0) is not None
    clock.advance(0.5)
    assert rate.throttled() is None


def test_saturated_cut_goes_to_what_the_server_let_through() -> None:
    clock = Clock()
    rate = controller(clock)
    for _ in range(5):  # five calls got through in the last second, then a 429
        rate.succeeded()
        clock.advance(0.05)
    assert rate.throttled(saturated=True) == 5
    clock.advance(5)  # nothing accepted in the last second: no deeper than rate x 0.25
    assert rate.throttled(saturated=True) == pytest.approx(1.25)


def test_saturated_cut_is_at_least_one_step() -> None:
    clock = Clock()
    rate = controller(clock)
    for _ in range(30):  # the server took more than our rate: the count says nothing new
        rate.succeeded()
        clock.advance(0.02)
    assert rate.throttled(saturated=True) == pytest.approx(19)  # 20 - 5 % of 20


def test_old_successes_leave_the_count() -> None:
    clock = Clock()
    rate = controller(clock)
    for _ in range(200):
        rate.succeeded()
        clock.advance(0.01)
    clock.advance(1.5)
    for _ in range(3):
        rate.succeeded()
    clock.advance(0.1)
    assert rate.throttled(saturated=True) == pytest.approx(5)  # deepest: 20 x 0.25
    assert len(rate._accepted) == 3


def test_floor() -> None:
    clock = Clock()
    rate = controller(clock)
    seen = []
    for _ in range(20):
        seen.append(rate.throttled())
        clock.advance(1.01)
    assert rate.rate == 1.0
    assert seen[-1] is None  # at the floor: nothing more to cut
    cuts = [r for r in seen if r is not None]
    assert cuts == sorted(cuts, reverse=True) and cuts[-1] == 1.0
    # a configured rate below the floor is its own floor
    low = controller(clock, limit=0.5)
    assert low.throttled() is None and low.rate == 0.5


# -- recovery --------------------------------------------------------------------------------


def test_recovery_is_additive_slow_and_stops_at_the_limit() -> None:
    clock = Clock()
    rate = controller(clock)
    rate.throttled()
    clock.advance(1.01)
    rate.throttled()
    assert rate.rate == pytest.approx(9.8)
    # successes before recover_after (3 s) change nothing
    clock.advance(2.9)
    assert rate.succeeded() is None
    clock.advance(0.2)
    assert rate.succeeded() == pytest.approx(10.8)  # + 5 % of 20
    assert rate.succeeded() is None  # once per period, however many successes
    rates = [rate.rate]
    for _ in range(40):
        clock.advance(3.01)
        rate.succeeded()
        rates.append(rate.rate)
    assert rates == sorted(rates)
    assert max(rates) == rate.limit == 20  # the ceiling
    assert rate.succeeded() is None


def test_a_429_restarts_the_recovery_clock() -> None:
    clock = Clock()
    rate = controller(clock)
    rate.throttled()
    clock.advance(0.9)
    assert rate.throttled() is None  # inside the window: no cut, but a 429 all the same
    clock.advance(2.5)  # 3.4 s since the cut, 2.5 s since the last 429
    assert rate.succeeded() is None
    clock.advance(0.6)
    assert rate.succeeded() is not None


def test_no_recovery_without_successes() -> None:
    clock = Clock()
    rate = controller(clock)
    rate.throttled()
    clock.advance(3600)
    assert rate.rate == pytest.approx(14)  # recovery needs evidence, not just time
    assert rate.succeeded() == pytest.approx(15)


def test_a_failed_probe_slows_the_next_one_and_a_held_rise_speeds_it_up() -> None:
    clock = Clock()
    rate = controller(clock)
    rate.throttled()  # 14
    clock.advance(3.0)
    assert rate.succeeded() == pytest.approx(15)
    clock.advance(0.2)
    rate.throttled()  # the rise earned a 429: probe half as often
    assert rate.next_rise_after == 6.0
    clock.advance(5.9)
    assert rate.succeeded() is None
    clock.advance(0.2)
    assert rate.succeeded() is not None
    clock.advance(0.2)
    rate.throttled()
    assert rate.next_rise_after == 12.0
    for _ in range(5):  # capped at 8 x recover_after
        clock.advance(100)
        rate.succeeded()
        clock.advance(0.1)
        rate.throttled()
    assert rate.next_rise_after == 24.0
    clock.advance(24.1)
    assert rate.succeeded() is not None  # this rise ...
    clock.advance(24.1)
    assert rate.succeeded() is not None  # ... held: patience halves
    assert rate.next_rise_after == 12.0


def test_set_limit_lowers_the_ceiling_and_the_rate() -> None:
    clock = Clock()
    rate = controller(clock)
    assert rate.set_limit(8) == 8
    assert rate.throttled() == pytest.approx(5.6)
    for _ in range(20):
        clock.advance(3.01)
        rate.succeeded()
    assert rate.rate == 8


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        AdaptiveRate(20, factor=1.0)
    with pytest.raises(ValueError):
        AdaptiveRate(20, deepest=0.8, factor=0.7)
    with pytest.raises(ValueError):
        AdaptiveRate(20, minimum=0)
    with pytest.raises(ValueError):
        AdaptiveRate(0)


# -- the bucket --------------------------------------------------------------------------------


def test_the_bucket_follows_its_controller_and_logs_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tower_async.ratelimit")
    clock = Clock()
    key = token_key(TOKEN)
    limiter = AiolimiterLimiter(20, key=key, adaptive=AdaptiveRate(20, clock=clock))
    assert isinstance(limiter, RateFeedback)
    limiter.on_throttled(0.0)
    assert limiter.rate == pytest.approx(14)
    assert limiter.limit == 20
    assert limiter.interval == pytest.approx(1.02 / 14)
    limiter.on_throttled()  # same window
    clock.advance(3.1)
    limiter.on_success()
    assert limiter.rate == pytest.approx(15)
    lowered, raised = (r for r in caplog.records if r.name == "tower_async.ratelimit")
    assert lowered.levelno == raised.levelno == logging.INFO
    assert "lowering the rate from 20/s to 14/s" in lowered.getMessage()
    assert "raising the rate from 14/s to 15/s" in raised.getMessage()
    for record in (lowered, raised):
        assert key[:12] in record.getMessage()
        assert key[12:20] not in record.getMessage()
        assert TOKEN not in record.getMessage() and TOKEN[:12] not in record.getMessage()
    assert "adaptive" in repr(limiter) and TOKEN not in repr(limiter)


def test_feedback_is_ignored_by_a_fixed_bucket() -> None:
    limiter = AiolimiterLimiter(20)
    for _ in range(10):
        limiter.on_throttled()
    limiter.on_success()
    assert limiter.rate == 20 and limiter.adaptive is None


def test_tighten_lowers_the_controllers_ceiling() -> None:
    clock = Clock()
    limiter = AiolimiterLimiter(20, adaptive=AdaptiveRate(20, clock=clock))
    limiter.on_throttled()  # 14
    limiter.tighten(10)
    assert (limiter.rate, limiter.limit) == (10, 10)
    for _ in range(10):
        clock.advance(3.01)
        limiter.on_success()
    assert limiter.rate == 10


async def test_a_change_keeps_the_buckets_level() -> None:
    """A fresh bucket would release at once; the re-tuned one waits out the interval."""
    limiter = AiolimiterLimiter(10, adaptive=AdaptiveRate(10, clock=Clock()))  # 102 ms
    await limiter.acquire()
    t0 = time.monotonic()
    limiter.on_throttled()  # 7/s: 146 ms
    await limiter.acquire()
    t1 = time.monotonic()
    await limiter.acquire()
    t2 = time.monotonic()
    assert t1 - t0 >= 0.095
    assert t2 - t1 >= 0.95 * 1.02 / 7


async def test_a_rise_wakes_a_waiter_earlier() -> None:
    """On a virtual clock: the waiter's own timer is 100 s away, so only the rise can wake it."""
    clock = Clock()
    rate = AdaptiveRate(2, clock=clock, minimum=0.01)
    limiter = AiolimiterLimiter(2, adaptive=rate, clock=clock)
    for _ in range(20):
        limiter.on_throttled()
        clock.advance(1.1)
    assert limiter.rate == pytest.approx(0.01)  # ~102 s apart
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done() and limiter.released == 1 and limiter.waiting == 1
    rises = 0
    while limiter.rate < 2:  # back up to 2/s, one step per 3 s without a 429
        clock.advance(3.01)
        limiter.on_success()
        rises += 1
        assert rises < 100
    await asyncio.wait_for(waiter, 30)
    assert limiter.released == 2


async def test_a_waiter_on_another_thread_is_woken_by_a_rise() -> None:
    """The gate is process-wide: a change made on this loop re-arms a waiter on another."""
    clock = Clock()
    limiter = AiolimiterLimiter(2, adaptive=AdaptiveRate(2, clock=clock, minimum=0.01), clock=clock)
    for _ in range(20):
        limiter.on_throttled()
        clock.advance(1.1)
    await limiter.acquire()
    done = threading.Event()

    def other_thread() -> None:
        asyncio.run(limiter.acquire())
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    for _ in range(3000):  # until the other loop is at the gate (at most 30 s)
        if limiter.waiting:
            break
        await asyncio.sleep(0.01)
    assert limiter.waiting == 1 and limiter.released == 1
    while limiter.rate < 2:
        clock.advance(3.01)
        limiter.on_success()
    await asyncio.to_thread(thread.join, 30)
    assert done.is_set() and limiter.released == 2


# -- the registry and the retry loop -----------------------------------------------------------


async def test_registry_buckets_adapt_by_default_and_are_shared() -> None:
    registry = LimiterRegistry()
    first = registry.get(TOKEN, 20)
    second = registry.get(TOKEN, 20, adaptive=False)  # a second session, same token
    assert first is second
    assert isinstance(first, AiolimiterLimiter) and first.adaptive is not None
    fixed = LimiterRegistry().get(TOKEN, 20, adaptive=False)
    assert isinstance(fixed, AiolimiterLimiter) and fixed.adaptive is None
    # asking for adaptation later turns it on for every user of the token
    registry2 = LimiterRegistry()
    off = registry2.get(TOKEN, 20, adaptive=False)
    assert registry2.get(TOKEN, 20) is off
    assert isinstance(off, AiolimiterLimiter) and off.adaptive is not None
    assert isinstance(registry.get(TOKEN, None), UnlimitedLimiter)


async def test_a_429_seen_by_one_session_slows_every_session_of_the_token() -> None:
    registry = LimiterRegistry()
    session_a = registry.get(TOKEN, 20)
    session_b = registry.get(TOKEN, 20)
    other = registry.get("another-token", 20)
    script = iter([Resp(429, {"Retry-After": "0"}), Resp(200)])

    async def send() -> Resp:
        return next(script)

    policy = RetryPolicy(rng=random.Random(1))
    response = await send_with_retries(
        send,
        operation_id="ListWorkflows",
        method="GET",
        idempotent=True,
        limiter=session_a,
        policy=policy,
        clock=SleeplessClock(),
    )
    assert response.status == 200
    assert isinstance(session_b, AiolimiterLimiter) and isinstance(other, AiolimiterLimiter)
    assert session_b.rate == pytest.approx(14)
    assert other.rate == 20


class RecordingFeedback:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    async def acquire(self) -> None:
        return None

    def on_throttled(self, retry_after: float | None = None) -> None:
        self.calls.append(("throttled", retry_after))

    def on_success(self) -> None:
        self.calls.append(("success", None))


async def test_send_with_retries_reports_every_response() -> None:
    outcomes = iter(
        [
            Resp(429, {"Retry-After": "2"}),
            Resp(429, body=b'{"message":"Maximum request rate exceeded. Wait 1secs"}'),
            Resp(429),
            Resp(503),
            Resp(200),
        ]
    )

    async def send() -> Resp:
        return next(outcomes)

    feedback = RecordingFeedback()
    await send_with_retries(
        send,
        operation_id="Op",
        method="GET",
        idempotent=True,
        limiter=feedback,
        policy=RetryPolicy(rng=random.Random(3)),
        clock=SleeplessClock(),
    )
    assert feedback.calls == [
        ("throttled", 2.0),
        ("throttled", 1.0),
        ("throttled", None),
        ("success", None),  # through the rate limit, whatever the status
        ("success", None),
    ]
