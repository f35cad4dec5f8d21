from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tower_async.ratelimit import (
    AiolimiterLimiter,
    Limiter,
    LimiterRegistry,
    UnlimitedLimiter,
    get_limiter,
    token_key,
)

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


def test_each_loop_gets_its_own_buckets() -> None:
    registry = LimiterRegistry()
    loop1 = asyncio.new_event_loop()
    loop2 = asyncio.new_event_loop()
    try:
        a1 = registry.get(TOKEN_A, 20, loop=loop1)
        assert registry.get(TOKEN_A, 20, loop=loop1) is a1
        assert registry.get(TOKEN_A, 20, loop=loop2) is not a1
        # each is usable on its own loop
        loop1.run_until_complete(a1.acquire())
        loop2.run_until_complete(registry.get(TOKEN_A, 20, loop=loop2).acquire())
    finally:
        loop1.close()
        loop2.close()


def test_registry_needs_a_loop_outside_async_code() -> None:
    with pytest.raises(RuntimeError):
        LimiterRegistry().get(TOKEN_A, 20)


@pytest.mark.parametrize("rate", [None, 0])
async def test_no_rate_means_no_limiting(rate: float | None) -> None:
    limiter = LimiterRegistry().get(TOKEN_A, rate)
    assert isinstance(limiter, UnlimitedLimiter)
    start = time.monotonic()
    for _ in range(100):
        await limiter.acquire()
    async with limiter:  # type: ignore[attr-defined]
        pass
    assert time.monotonic() - start < 0.5


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
    for buckets in registry._by_loop.values():
        texts.extend(buckets.keys())
        texts.extend(repr(b) for b in buckets.values())
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


# -- behaviour with real time (one bounded run) ----------------------------------------------


async def test_no_sliding_window_exceeds_the_limit() -> None:
    limit = 20
    limiter = AiolimiterLimiter(limit)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(200):  # bounded; cancelled long before
            await limiter.acquire()
            stamps.append(time.monotonic())

    workers = [asyncio.create_task(worker()) for _ in range(50)]
    await asyncio.sleep(1.6)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    assert len(stamps) >= 25
    assert max_in_window(stamps, 1.0) <= limit
    # any limit + 1 consecutive releases span more than a second
    assert min(stamps[i + limit] - stamps[i] for i in range(len(stamps) - limit)) > 1.0
    throughput = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert throughput >= 0.9 * limit


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
        asyncio.gather(*tasks.values(), return_exceptions=True), timeout=5
    )
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[2], asyncio.CancelledError)
    assert set(stamps) == {"b", "d"}
    # the cancelled waiters consumed nothing: b goes one interval after the first acquire,
    # d one interval after b
    assert stamps["b"] - t0 < 1.9 * interval
    assert stamps["d"] - stamps["b"] >= 0.95 * interval
    assert stamps["d"] - t0 < 2.9 * interval


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


async def test_context_manager_acquires() -> None:
    limiter = AiolimiterLimiter(50)
    start = time.monotonic()
    async with limiter:
        pass
    async with limiter:
        pass
    assert time.monotonic() - start >= 0.95 * limiter.interval
