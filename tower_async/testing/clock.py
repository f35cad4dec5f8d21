"""Clocks for the fake Platform.

Two independent clocks drive the fake:

* the *run clock* (``FakeState.clock``) decides where runs are in their lifecycle
  (SUBMITTED -> RUNNING -> SUCCEEDED/FAILED) and stamps ``submit``/``start``/``complete``;
  it reads wall-clock-like epoch seconds;
* the *rate clock* (``FakePlatform(rate_clock=...)``) timestamps request arrivals for the
  sliding-window rate limiter; it reads monotonic seconds.

Both are plain objects with a ``now()`` method, so tests can pass a :class:`ManualClock`
and move time with :meth:`ManualClock.advance` instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock", "RealClock"]

#: 2024-01-01T00:00:00Z, the default start of a manual run clock.
DEFAULT_EPOCH = 1_704_067_200.0


class Clock(Protocol):
    def now(self) -> float:
        """Current time in seconds."""
        ...


class ManualClock:
    """A clock that only moves when told to (``advance``/``set``)."""

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        return self._now

    def set(self, value: float) -> None:
        if value < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = float(value)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


class RealClock:
    """Epoch time, optionally running ``scale`` times faster than real time.

    ``advance`` is still available (it adds an offset), handy in demos.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be > 0")
        self.scale = scale
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        elapsed = time.monotonic() - self._origin_mono
        return self._origin_wall + elapsed * self.scale + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._offset += seconds
        return self.now()


class MonotonicClock:
    """``time.monotonic`` as a :class:`Clock` (the default rate clock)."""

    def now(self) -> float:
        return time.monotonic()
