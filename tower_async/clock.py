"""The one clock every timed behaviour of the client reads: monotonic seconds and a sleep.

Retries (backoff, ``Retry-After``, deadlines), the adaptive limiter's controller, waiting
for runs, following logs and the bulk launcher's reconcile delay all take a :class:`Clock`;
a session's is ``tw.clock`` (``Tower(clock=...)``, default :data:`SYSTEM_CLOCK`).  Tests
pass a :class:`VirtualClock`, on which every wait is instant and time is what the sleeps
add up to::

    clock = VirtualClock()
    async with Tower(..., clock=clock) as tw:
        await tw.wait_for_run(wid, poll_interval=30)   # no real waiting
    assert clock.slept >= 30

(The limiter's own gate paces calls with the event loop's timer, on real time: a virtual
clock changes what the controller measures, not how long the bucket holds a call.)
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "VirtualClock", "monotonic_of"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds and an async sleep of that many seconds."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """``time.monotonic`` and ``asyncio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


#: the clock of every session not given one
SYSTEM_CLOCK = SystemClock()


class VirtualClock:
    """A clock for tests: ``sleep(s)`` returns at once (after letting other tasks run) with
    the time moved to at least ``s`` seconds after the sleep began, so concurrent sleepers
    share one timeline.  ``slept`` is the sum of every sleep asked for; ``sleeps`` lists them
    (the last 10,000)."""

    __slots__ = ("now", "sleeps", "slept")

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self.slept = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward (a test's "meanwhile")."""
        if not seconds >= 0:
            raise ValueError(f"cannot move a clock back or by {seconds!r}")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds) if math.isfinite(seconds) else 0.0
        until = self.now + seconds
        self.slept += seconds
        if len(self.sleeps) < 10_000:
            self.sleeps.append(seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, until)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now:g}, slept={self.slept:g})"


def monotonic_of(clock: Clock | Callable[[], float]) -> Callable[[], float]:
    """The time function of ``clock``: a :class:`Clock`, or already a ``() -> seconds``."""
    monotonic = getattr(clock, "monotonic", None)
    if callable(monotonic):
        return monotonic  # type: ignore[no-any-return]
    if callable(clock):
        return clock
    raise TypeError(f"a clock must have monotonic() or be a function, not {clock!r}")
