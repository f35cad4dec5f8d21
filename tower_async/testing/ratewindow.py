"""Strict sliding-window rate limiting, per access token.

A call arriving at time ``t`` is accepted when fewer than ``limit`` calls were *accepted*
in the half-open window ``(t - window, t]``; otherwise it is answered 429.

Only accepted calls enter the window: a rejected (429) call does not push the window
forward. This is what makes "zero 429s" an honest, testable property: a client that keeps
at most ``limit`` calls in any ``window``-second span never sees a 429, whatever other
clients or its own earlier mistakes did, and ``max_window_count`` can never exceed
``limit``. (Counting rejected calls too would punish a retrying client forever.)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["RateStats", "SlidingWindow"]


@dataclass
class RateStats:
    """Counters for one token."""

    calls: int = 0
    accepted: int = 0
    rejected: int = 0  # answered 429
    max_window_count: int = 0  # most accepted calls seen in any sliding window

    @property
    def throttled(self) -> int:
        return self.rejected

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "max_window_count": self.max_window_count,
        }


@dataclass
class SlidingWindow:
    """Arrival times of the accepted calls of one token within the last ``window`` s."""

    limit: int | None
    window: float = 1.0
    stats: RateStats = field(default_factory=RateStats)
    _times: deque[float] = field(default_factory=deque, repr=False)

    def _expire(self, now: float) -> None:
        edge = now - self.window
        times = self._times
        while times and times[0] <= edge:
            times.popleft()

    def hit(self, now: float) -> float | None:
        """Register a call at ``now``.

        Returns ``None`` when the call is accepted, else the number of seconds until a
        slot frees up (> 0).
        """
        stats = self.stats
        stats.calls += 1
        self._expire(now)
        times = self._times
        if self.limit is not None and len(times) >= self.limit:
            stats.rejected += 1
            return max(times[0] + self.window - now, 1e-9)
        times.append(now)
        stats.accepted += 1
        if len(times) > stats.max_window_count:
            stats.max_window_count = len(times)
        return None

    def in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._times)

    @staticmethod
    def retry_after_seconds(wait: float) -> int:
        """Whole seconds for ``Retry-After``; like the Platform this rounds down, so "0"."""
        return max(0, math.floor(wait))
