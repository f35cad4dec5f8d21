from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import pytest

from tower_async import Tower
from tower_async.ratelimit import (
    AiolimiterLimiter,
    Limiter,
    LimiterRegistry,
    UnlimitedLimiter,
    get_limiter,
    token_key,
)
from tower_async.testing import run_in_thread

TOKEN_A = "eyJ0aWQiOiAxMjM0NX0uc2VjcmV0LXRva2VuLWE"
TOKEN_B = "eyJ0aWQiOiA2Nzg5MH0uc2VjcmV0LXRva2VuLWI"


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    """Most timestamps in any closed window of ``width`` seconds."""
    best = 0
    start = 0
    for end, t in enumerate(stamps):
        while t - stamps[start] > width:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_threads(target: Callable[[], None], n: int) -> None:
    """Run ``target`` on ``n`` threads at once (each starts its own event loop)."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
        assert not t.is_alive()


# -- registry ------------------------------------------------------------------------------


async def test_same_token_same_limiter_within_a_loop() -> None:
    registry = LimiterRegistry()
    first = registry.get(TOKEN_A, 20)
    assert registry.get(TOKEN_A, 20) is first
    assert isinstance(first, Limiter)


async def test_different_tokens_different_limiters() -> None:
    registry = LimiterRegistry()
    assert registry.get(TOKEN_A, 20) is not registry.get(TOKEN_B, 20)
    assert registry.get(None, 20) is registry.get(None, 20)


async def test_module_level_get_limiter_is_shared() -> None:
    assert get_limiter(TOKEN_A, 20) is get_limiter(TOKEN_A, 20)


def test_one_bucket_for_every_loop_and_thread() -> None:
    registry = LimiterRegistry()
    seen: list[object] = []

    def in_thread() -> None:
        async def main() -> None:
            limiter = registry.get(TOKEN_A, 20)
            seen.append(limiter)
            await limiter.acquire()  # usable on this thread's loop

        asyncio.run(main())

    run_threads(in_thread, 3)
    assert len(seen) == 3 and all(x is seen[0] for x in seen)
    assert registry.get(TOKEN_A, 20) is seen[0]  # and outside any loop
    assert isinstance(seen[0], AiolimiterLimiter) and seen[0].released == 3


@pytest.mark.parametrize("rate", [None, 0])
async def test_no_rate_means_no_limiting(rate: float | None) -> None:
    limiter = LimiterRegistry().get(TOKEN_A, rate)
    assert isinstance(limiter, UnlimitedLimiter)
    for _ in range(100):  # never suspends: the coroutine finishes on its first step
        with pytest.raises(StopIteration):
            limiter.acquire().send(None)
    async with limiter:  # type: ignore[attr-defined]
        pass


@pytest.mark.parametrize("rate", [-1, float("inf"), float("nan")])
async def test_bad_rates_are_rejected(rate: float) -> None:
    with pytest.raises(ValueError):
        LimiterRegistry().get(TOKEN_A, rate)


async def test_token_never_appears_in_keys_or_reprs() -> None:
    registry = LimiterRegistry()
    limiter = registry.get(TOKEN_A, 20)
    await limiter.acquire()
    assert token_key(TOKEN_A) == token_key(TOKEN_A)
    assert len(token_key(TOKEN_A)) == 64
    texts = [repr(registry), repr(limiter), str(limiter), token_key(TOKEN_A)]
    texts.extend(registry._buckets.keys())
    texts.extend(repr(b) for b in registry._buckets.values())
    for text in texts:
        assert TOKEN_A not in text
        assert TOKEN_A[:12] not in text


async def test_lower_rate_for_same_token_wins() -> None:
    registry = LimiterRegistry()
    limiter = registry.get(TOKEN_A, 20)
    assert registry.get(TOKEN_A, 5) is limiter
    assert isinstance(limiter, AiolimiterLimiter)
    assert limiter.rate == 5
    assert registry.get(TOKEN_A, 50) is limiter
    assert limiter.rate == 5  # never raised


def test_interval_shape() -> None:
    limiter = AiolimiterLimiter(20, margin=0.02)
    assert limiter.interval == pytest.approx(0.051)
    # L + 1 consecutive releases span >= L * interval = 1 s + margin
    assert 20 * limiter.interval == pytest.approx(1.02)


# -- behaviour with real time: safety invariants only (bounded in count) ---------------------


def assert_spaced(stamps: list[float], limit: int) -> None:
    """No 1 s window holds more than ``limit``; any ``limit + 1`` releases span over 1 s."""
    stamps = sorted(stamps)
    assert max_in_window(stamps, 1.0) <= limit
    assert min(stamps[i + limit] - stamps[i] for i in range(len(stamps) - limit)) > 1.0


async def test_no_sliding_window_exceeds_the_limit(release_times: list[float]) -> None:
    limit = 20
    limiter = AiolimiterLimiter(limit)
    # 24 calls between 50 tasks, then they stop: more than a window's worth (so the spacing
    # of any limit + 1 is checked), few enough to take ~1.2 s
    remaining = itertools.count(24, -1)

    async def worker() -> None:
        while next(remaining) > 0:
            await limiter.acquire()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(50))), timeout=60)
    assert len(release_times) == limiter.released == 24
    assert_spaced(release_times, limit)


def test_three_threads_each_with_a_loop_share_one_token(release_times: list[float]) -> None:
    """Issue 14: three loops on three threads sent 57 calls/s with one bucket per loop."""
    registry = LimiterRegistry()
    limit, per_thread = 20, 8

    def in_thread() -> None:
        async def main() -> None:
            limiter = registry.get(TOKEN_A, limit)

            async def worker() -> None:
                for _ in range(per_thread // 4):
                    await limiter.acquire()

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(4))), timeout=60)

        asyncio.run(main())

    run_threads(in_thread, 3)
    assert len(release_times) == 3 * per_thread
    assert_spaced(release_times, limit)


def test_three_threads_against_the_strict_fake_share_one_bucket(
    release_times: list[float],
) -> None:
    """The same through whole sessions: the fake at 20/s counts what it received.  A 429
    (arrival jitter on a loaded host above the bucket's margin) is absorbed, never raised."""
    retried: list[int | None] = []
    with run_in_thread(rate_limit=20) as fake:
        token = fake.add_token(rate_limit=20)
        ws = fake.workspace_id("my-org", "production")

        def in_thread() -> None:
            async def main() -> None:
                on_retry = lambda event: retried.append(event.status)  # noqa: E731
                async with Tower(
                    token=token, endpoint=fake.url, rate_limit=20, on_retry=on_retry
                ) as tw:
                    for _ in range(8):
                        await tw.list_workflows(workspace_id=ws, max=1)

            asyncio.run(main())

        run_threads(in_thread, 3)
        stats = fake.stats(token)
    assert stats.accepted >= 24  # every call went through (plus the sessions' own)
    assert stats.max_window_count <= 20
    assert retried == [429] * stats.rejected
    assert len(release_times) == stats.accepted + stats.rejected  # all through one bucket
    assert_spaced(release_times, 20)


# -- cancellation ----------------------------------------------------------------------------


async def test_cancelled_waiter_leaves_the_bucket_consistent() -> None:
    limiter = AiolimiterLimiter(50)  # interval ~20 ms
    interval = limiter.interval
    await limiter.acquire()  # bucket now full
    t0 = time.monotonic()

    stamps: dict[str, float] = {}

    async def waiter(name: str) -> None:
        await limiter.acquire()
        stamps[name] = time.monotonic()

    tasks = {name: asyncio.create_task(waiter(name)) for name in "abcd"}
    await asyncio.sleep(0)  # all four queued
    tasks["a"].cancel()
    tasks["c"].cancel()
    results = await asyncio.wait_for(
        asyncio.gather(*tasks.values(), return_exceptions=True), timeout=30
    )
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[2], asyncio.CancelledError)
    assert set(stamps) == {"b", "d"}
    # the cancelled waiters consumed nothing: three releases in all, still spaced
    assert limiter.released == 3
    assert limiter.waiting == 0
    assert stamps["b"] - t0 >= 0.95 * interval
    assert stamps["d"] - stamps["b"] >= 0.95 * interval


async def test_cancel_while_waiting_then_bucket_still_spaces_calls() -> None:
    limiter = AiolimiterLimiter(50)
    await limiter.acquire()
    task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stamps = []
    for _ in range(3):
        await limiter.acquire()
        stamps.append(time.monotonic())
    assert all(b - a >= 0.95 * limiter.interval for a, b in itertools.pairwise(stamps))
    assert limiter.released == 4


async def test_context_manager_acquires() -> None:
    limiter = AiolimiterLimiter(50)
    start = time.monotonic()
    async with limiter:
        pass
    async with limiter:
        pass
    assert limiter.released == 2
    assert time.monotonic() - start >= 0.95 * limiter.interval
