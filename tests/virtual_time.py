"""Rate behaviour on virtual time: an event loop whose clock jumps, and a simulated Platform.

``run_virtual(main)`` runs ``main()`` on a :class:`VirtualTimeLoop`: ``loop.time()`` is
virtual and, whenever nothing is ready to run (no callback, no socket or thread waking the
loop), it jumps to the next timer instead of waiting for it.  Everything timed on the loop
(``asyncio.sleep``, ``call_later``, the limiter's gate, aiolimiter's bucket) then runs at
once, in the same order as on real time.  Code reading ``time.monotonic`` directly is not
moved: give it ``loop.time`` (see :class:`LoopClock`).

:class:`SimulatedPlatform` is a ``Tower(transport=...)`` answering ``ListWorkflows`` behind
the fake Platform's own strict sliding window (``tower_async.testing.ratewindow``) on the
loop's virtual time, with a 429 and ``Retry-After`` like the fake; the real-HTTP checks of the
same behaviour stay in the tests using ``FakePlatform``.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from tower_async.sansio import RawResponse, Request
from tower_async.testing.ratewindow import RateStats, SlidingWindow

T = TypeVar("T")

ENDPOINT = "https://simulated.platform.test/api"


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking ``timeout`` seconds with nothing ready, polls
    once and moves its loop's virtual clock by ``timeout``."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None:  # nothing timed: wait for real I/O (a worker thread)
            return ready or super().select(None)
        if timeout > 0:
            self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now


class LoopClock:
    """A ``tower_async.clock.Clock`` on a loop's time (virtual on :class:`VirtualTimeLoop`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def monotonic(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def run_virtual(main: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    """Run ``main(loop)`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class SimulatedPlatform:
    """``ListWorkflows`` behind one token's strict sliding window, ``latency`` seconds each
    way (virtual time on a :class:`VirtualTimeLoop`)."""

    def __init__(self, limit: int, *, latency: float = 0.002, window: float = 1.0) -> None:
        self.window = SlidingWindow(limit, window)
        self.latency = latency
        self.requests: list[Request] = []

    @property
    def stats(self) -> RateStats:
        return self.window.stats

    async def send(self, request: Request, **options: Any) -> RawResponse:
        self.requests.append(request)
        await asyncio.sleep(self.latency)
        if request.operation_id != "ListWorkflows":
            return _json(404, {"message": f"not simulated: {request.operation_id}"})
        wait = self.window.hit(asyncio.get_running_loop().time())
        await asyncio.sleep(self.latency)
        if wait is not None:
            secs = SlidingWindow.retry_after_seconds(wait)
            message = f"Maximum request rate exceeded. Wait {secs}secs before issuing a new request"
            return _json(429, {"message": message}, {"Retry-After": str(secs)})
        return _json(200, {"workflows": [], "totalSize": 0})

    async def close(self) -> None:
        return None


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> RawResponse:
    return RawResponse(
        status, {"Content-Type": "application/json", **(headers or {})}, orjson.dumps(body)
    )
