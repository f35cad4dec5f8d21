"""Client-side rate limiting: one bucket per access key, per event loop.

The Platform limits requests per access token (20 calls/s on Seqera Cloud; Enterprise installs
choose their own).  Every session, task and operation in a process that uses the same token
shares one bucket, so ``asyncio.gather`` over a hundred calls cannot exceed the limit.

Shape of the bucket
-------------------
aiolimiter's ``AsyncLimiter(max_rate, time_period)`` is a leaky bucket with capacity
``max_rate`` that leaks ``max_rate / time_period`` per second.  A bucket of capacity *c*
leaking *r*/s admits ``c`` calls at once after an idle spell and then one every ``1/r`` s, so a
1 s window can hold ``c + r`` calls: ``AsyncLimiter(20, 1)`` let **39** calls into one 1 s
window in a measurement (50 concurrent acquirers, 3 s; 26.4 calls/s over the run).  That is
exactly the burst that earns a 429.

So the bucket here has capacity **1** (aiolimiter's documented "no bursts" shape:
``max_rate=1, time_period=interval``): two releases are never closer than ``interval``, even
after an idle spell, and any ``L + 1`` consecutive releases span at least ``L * interval``.
With ``interval = (1 s + margin) / L`` that span is ``1 s + margin``, so **no window shorter
than 1 s + margin holds more than L calls**; the margin (default 20 ms) absorbs the difference
in client-to-server latency between two requests (loopback jitter is ~1 ms).  Sustained
throughput is ``L / (1 + margin)`` = 0.980 x L nominal.

Measured with real time (50 concurrent acquirers on one bucket, limit 20, 3 s, sliding
1 s window counted over the release timestamps):

=============================  ==============  ============  ===============================
shape                          max in any 1 s  calls/s       min span of 21 consecutive calls
=============================  ==============  ============  ===============================
capacity 20, 20/s (default)    39              26.4 (1.32x)  0.051 s
capacity 2, 18/s               19              18.3 (0.92x)  1.056 s
capacity 1, 19/s  ("L - 1")    19              18.7 (0.94x)  1.067 s
capacity 1, 20/1.02 s (this)   20              19.5 (0.97x)  1.027 s
=============================  ==============  ============  ===============================

Capacity 1 is the only shape that reaches >= 0.95 x L: with capacity *k* the bound forces the
rate down to ``(L + 1 - k) / (1 + margin)``.  The real rate sits a little below nominal because
each wake-up of the event loop is late by a fraction of a millisecond and a capacity-1 bucket
cannot bank that slack; a loaded loop only lowers throughput, it never tightens the spacing, so
the window guarantee holds under load.  Latency differences larger than the margin (one
request opening a fresh TLS connection while the next reuses a warm one) can still let the
server see L + 1 in a window; the retry layer handles the occasional 429.

For a non-integer rate the guarantee reads: any 1 s window holds at most
``floor(1 + rate / (1 + margin))`` calls.

Cancelling a task that waits in :meth:`AiolimiterLimiter.acquire` leaves the bucket as it was:
aiolimiter only adds to the level after the wait completes, and drops cancelled waiters from
its queue.

aiolimiter objects are bound to the event loop they first run on, so the registry keeps one
set of buckets per loop (a ``WeakKeyDictionary`` keyed by the loop).  Buckets are keyed by the
SHA-256 hex digest of the token; the token itself is never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import weakref
from types import TracebackType
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

__all__ = [
    "DEFAULT_MARGIN",
    "AiolimiterLimiter",
    "Limiter",
    "LimiterRegistry",
    "UnlimitedLimiter",
    "get_limiter",
    "token_key",
]

logger = logging.getLogger("tower_async.ratelimit")

DEFAULT_MARGIN = 0.02
"""Seconds added to the 1 s window when spacing calls (absorbs arrival jitter)."""


@runtime_checkable
class Limiter(Protocol):
    """Anything that can make a caller wait for its turn.

    One method, so that another backend (a bucket shared between processes through Redis,
    say) can stand in.  Implementations must let ``CancelledError`` propagate from
    :meth:`acquire` without consuming capacity.
    """

    async def acquire(self) -> None:
        """Wait until one more call may be sent, and count it."""
        ...


class _ContextManagerMixin:
    __slots__ = ()

    async def acquire(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class UnlimitedLimiter(_ContextManagerMixin):
    """A limiter that never waits (``rate_limit=None`` or ``0``)."""

    __slots__ = ()

    async def acquire(self) -> None:
        return None

    def __repr__(self) -> str:
        return "<UnlimitedLimiter>"


_UNLIMITED = UnlimitedLimiter()


class AiolimiterLimiter(_ContextManagerMixin):
    """A capacity-1 aiolimiter bucket that spaces calls ``(1 s + margin) / rate`` apart.

    See the module docstring for why this shape.  ``key`` is only used in ``repr`` (a prefix
    of it); pass a digest, never a token.
    """

    __slots__ = ("_bucket", "_interval", "_margin", "_rate", "key")

    def __init__(self, rate: float, *, margin: float = DEFAULT_MARGIN, key: str = "") -> None:
        _check_rate(rate)
        if not (margin >= 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a finite number >= 0, not {margin!r}")
        self.key = key
        self._margin = margin
        self._rate = float(rate)
        self._interval = (1.0 + margin) / self._rate
        self._bucket = AsyncLimiter(1, self._interval)

    @property
    def rate(self) -> float:
        """The configured limit, calls per second."""
        return self._rate

    @property
    def interval(self) -> float:
        """Minimum seconds between two releases."""
        return self._interval

    async def acquire(self) -> None:
        # The bucket may be swapped for a slower one by tighten() while we wait; a caller
        # released by the old bucket then queues on the new one so the new spacing holds.
        for _ in range(8):
            bucket = self._bucket
            await bucket.acquire()
            if bucket is self._bucket:
                return
        await self._bucket.acquire()  # pragma: no cover - needs 8 swaps during one wait

    def tighten(self, rate: float) -> None:
        """Lower the rate (never raises it).  Used when two sessions ask for different rates
        for the same token: the stricter one wins, since the server's limit is per token."""
        _check_rate(rate)
        if rate >= self._rate:
            return
        self._rate = float(rate)
        self._interval = (1.0 + self._margin) / self._rate
        self._bucket = AsyncLimiter(1, self._interval)

    def __repr__(self) -> str:
        short = self.key[:12] + "..." if self.key else "-"
        return (
            f"<AiolimiterLimiter key={short} rate={self._rate:g}/s "
            f"interval={self._interval * 1000:.1f}ms>"
        )


def _check_rate(rate: float) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number > 0, not {rate!r}")


def token_key(token: str | None) -> str:
    """The registry key for a token: its SHA-256 hex digest (``None`` counts as ``""``)."""
    return hashlib.sha256((token or "").encode("utf-8")).hexdigest()


class LimiterRegistry:
    """Buckets per (event loop, token digest).

    The process-wide instance behind :func:`get_limiter`; tests can make their own.
    """

    def __init__(self, *, margin: float = DEFAULT_MARGIN) -> None:
        self._margin = margin
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, AiolimiterLimiter]
        ] = weakref.WeakKeyDictionary()

    def get(
        self,
        token: str | None,
        rate: float | None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Limiter:
        """The shared limiter for ``token`` on ``loop`` (default: the running loop).

        ``rate`` is calls per second; ``None`` or ``0`` means no limiting.  If the bucket for
        this token already exists with a higher rate, it is lowered to ``rate``.
        """
        if rate is None or rate == 0:
            return _UNLIMITED
        _check_rate(rate)
        if loop is None:
            loop = asyncio.get_running_loop()
        buckets = self._by_loop.get(loop)
        if buckets is None:
            buckets = self._by_loop[loop] = {}
        key = token_key(token)
        limiter = buckets.get(key)
        if limiter is None:
            limiter = buckets[key] = AiolimiterLimiter(rate, margin=self._margin, key=key)
        elif rate < limiter.rate:
            logger.info(
                "lowering the rate limit of bucket %s... from %g/s to %g/s",
                key[:12],
                limiter.rate,
                rate,
            )
            limiter.tighten(rate)
        return limiter

    def clear(self) -> None:
        """Forget every bucket (tests)."""
        self._by_loop.clear()

    def __repr__(self) -> str:
        loops = list(self._by_loop.values())
        return f"<LimiterRegistry loops={len(loops)} buckets={sum(len(b) for b in loops)}>"


_REGISTRY = LimiterRegistry()


def get_limiter(
    token: str | None,
    rate: float | None,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Limiter:
    """The process-wide limiter for ``token`` on ``loop``; see :meth:`LimiterRegistry.get`."""
    return _REGISTRY.get(token, rate, loop=loop)
