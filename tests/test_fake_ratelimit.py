"""Sliding-window rate limiting of the fake Platform (manual rate clock: no sleeping)."""

from __future__ import annotations

import asyncio

import aiohttp

from tower_async.testing import FakePlatform, ManualClock, SlidingWindow


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None, bytes]:
    async with session.get(url) as resp:
        return resp.status, resp.headers.get("Retry-After"), await resp.read()


async def test_burst_beyond_limit_gets_exactly_the_excess_429() -> None:
    clock = ManualClock(0.0)
    async with (
        FakePlatform(rate_limit=5, rate_clock=clock) as fake,
        aiohttp.ClientSession(headers=fake.headers()) as s,
    ):
        results = [await _get(s, f"{fake.url}/user-info") for _ in range(8)]
        statuses = [r[0] for r in results]
        assert statuses == [200] * 5 + [429] * 3
        for status, retry_after, body in results[5:]:
            assert status == 429
            assert retry_after == "1"
            assert body == (
                b'{"message":"Maximum request rate exceeded. '
                b'Wait 1secs before issuing a new request"}'
            )
        stats = fake.stats()
        assert (stats.calls, stats.accepted, stats.rejected) == (8, 5, 3)
        assert stats.max_window_count == 5

        clock.advance(0.5)  # still inside the window: Retry-After rounds down to "0"
        status, retry_after, _ = await _get(s, f"{fake.url}/user-info")
        assert (status, retry_after) == (429, "0")

        clock.advance(0.5)  # exactly one second after the burst: its calls left the window
        results = [await _get(s, f"{fake.url}/user-info") for _ in range(5)]
        assert [r[0] for r in results] == [200] * 5
        assert fake.stats().max_window_count == 5
        assert fake.stats().rejected == 4


async def test_window_slides_over_arrival_times_not_fixed_seconds() -> None:
    clock = ManualClock(100.0)
    async with (
        FakePlatform(rate_limit=5, rate_clock=clock) as fake,
        aiohttp.ClientSession(headers=fake.headers()) as s,
    ):
        url = f"{fake.url}/orgs"
        assert [(await _get(s, url))[0] for _ in range(3)] == [200] * 3
        clock.advance(0.6)
        assert [(await _get(s, url))[0] for _ in range(3)] == [200, 200, 429]
        clock.advance(0.4)  # t=101.0: the 3 calls of t=100.0 expire, 2 of t=100.6 remain
        assert [(await _get(s, url))[0] for _ in range(4)] == [200, 200, 200, 429]
        assert fake.stats().max_window_count == 5


async def test_concurrent_burst_and_per_token_limits() -> None:
    clock = ManualClock(0.0)
    async with FakePlatform(rate_limit=5, rate_clock=clock) as fake:
        slow = fake.add_token(rate_limit=2)
        unlimited = fake.add_token(rate_limit=None)
        async with aiohttp.ClientSession() as s:
            url = f"{fake.url}/user-info"

            async def call(token: str) -> int:
                async with s.get(url, headers=fake.headers(token)) as resp:
                    await resp.read()
                    return resp.status

            default = await asyncio.gather(*(call(fake.token) for _ in range(8)))
            assert sorted(default) == [200] * 5 + [429] * 3
            assert sorted(await asyncio.gather(*(call(slow) for _ in range(4)))) == [
                200,
                200,
                429,
                429,
            ]
            assert set(await asyncio.gather(*(call(unlimited) for _ in range(30)))) == {200}
        assert fake.stats(slow).max_window_count == 2
        assert fake.stats(unlimited).max_window_count == 30
        assert fake.stats(unlimited).rejected == 0


async def test_rate_limit_can_be_disabled_and_unauthenticated_calls_are_not_counted() -> None:
    async with (
        FakePlatform(rate_limit=None) as fake,
        aiohttp.ClientSession(headers=fake.headers()) as s,
    ):
        statuses = [(await _get(s, f"{fake.url}/user-info"))[0] for _ in range(40)]
        assert set(statuses) == {200}
        for _ in range(3):
            await _get(s, f"{fake.url}/service-info")
        assert fake.stats().calls == 40


def test_sliding_window_unit() -> None:
    w = SlidingWindow(limit=2, window=1.0)
    assert w.hit(0.0) is None
    assert w.hit(0.25) is None
    wait = w.hit(0.5)
    assert wait is not None and abs(wait - 0.5) < 1e-9
    assert w.hit(1.0) is None  # the call at 0.0 left the window (half-open interval)
    assert w.hit(1.0) is not None
    assert w.in_window(1.0) == 2
    assert w.stats.as_dict() == {"calls": 5, "accepted": 3, "rejected": 2, "max_window_count": 2}
    assert SlidingWindow.retry_after_seconds(0.99) == 0
    assert SlidingWindow.retry_after_seconds(2.5) == 2
