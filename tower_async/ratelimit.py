"""Client-side rate limiting: one bucket per access token for the whole process.

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

So the bucket here has capacity **1** (aiolimiter's documented "no bursts" shape,
``max_rate=1, time_period=interval``, enforced by the process-wide gate below): two releases
are never closer than ``interval``, even after an idle spell, and any ``L + 1`` consecutive
releases span at least ``L * interval``.
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
the gate stamps a release only when a call passes, and a cancelled waiter leaves the loop's
queue.

Adapting to a lower server limit
--------------------------------
An Enterprise install may allow fewer calls than the client is configured for (5/s against the
default 20/s); a fixed bucket then sends too fast and most calls earn a 429 before the retry
layer absorbs them (measured: 160 429s for 60 calls, 73 % of all requests sent).  Buckets
made by the registry are therefore **adaptive** by default:
:func:`~tower_async.retries.send_with_retries` reports every response through the small
:class:`RateFeedback` interface (:meth:`~AiolimiterLimiter.on_throttled`,
:meth:`~AiolimiterLimiter.on_success`), and an :class:`AdaptiveRate` controller (pure
arithmetic on an injectable clock) moves the bucket's rate:

* **decrease** on a 429, at most once per ``window`` (1 s, the server's window, or the
  server's ``Retry-After``/"Wait Nsecs" when longer, up to 60 s): a 429 soon after a cut comes
  from a call sent into a window that was already full (or already in flight), so it carries
  no news.  When callers are queued on the bucket (the bucket, not the callers, sets the pace)
  the number of calls the server let through in the last window *is* what it allows this
  token, so the rate goes to that count, and at least one ``step`` down; otherwise it is
  multiplied by ``factor`` (0.7).  One cut never goes below ``rate x deepest`` (0.25), and no
  cut below ``minimum`` (1/s).  Against a 5/s server the first 429 takes 20/s straight to 5/s;
* **recovery** by ``step`` (5 %) of the configured rate after ``recover_after`` (3 s) of
  successful calls without a 429, never above the configured rate.  A rise that earns a 429
  was a failed probe: the wait before the next rise doubles (up to 24 s) and halves again
  after a rise that holds, so a bucket sitting just under the server's limit probes it rarely.

Measured on loopback (``bench/bench_ratelimit.py``, 50 tasks, 10 s, server 5/s, client 20/s):
adaptive off 5.00 calls/s with 74 % of the requests answered 429; adaptive on 4.80 calls/s
with 9 % (5 of 53: four while the first full window drains, one failed probe); in
``tests/test_resilience.py`` 60 calls earn 6 429s instead of 160.

Every change is logged at INFO on ``tower_async.ratelimit`` with the first 12 hex digits of
the token's digest.  Because the controller lives in the shared bucket, what one session
learns about a token slows every session using that token in the process.

One bucket per process, whatever the loops and threads
------------------------------------------------------
aiolimiter's ``AsyncLimiter`` is bound to the event loop it first runs on (reused on another
loop it warns and drops the waiters), so it cannot be the process-wide bucket by itself.  Each
token's :class:`AiolimiterLimiter` is therefore a **gate** shared by the whole process - a
``threading.Lock`` around the time (``time.monotonic``) of the last release and the interval
in force - in front of one fixed-rate aiolimiter bucket per loop:

* a task first queues in its loop's FIFO (an ``asyncio.Lock``), so one task per loop asks the
  gate; it passes when ``interval`` has gone by since the last release from *any* loop or
  thread, and the release is stamped when it happens (a late wake-up lowers the rate, it
  never bunches calls); otherwise it sleeps on its own loop until then.  A rate change wakes
  the sleepers of every loop (``call_soon_threadsafe``) so they re-check at the new spacing;
* then it takes the loop's aiolimiter bucket, ``AsyncLimiter(1, 1 / limit)`` through its
  public API (never re-tuned): a hard per-loop ceiling at the configured rate without the
  margin.  The gate's spacing is always wider, so this never waits in practice.

Three threads each running a loop with the same token therefore share 20 calls/s, instead of
sending 20 each.  Buckets are keyed by the SHA-256 hex digest of the token; the token itself
is never stored.  To share one token between *processes or hosts*, use the Redis limiter
(:mod:`tower_async.ratelimit_redis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from .clock import Clock, monotonic_of

__all__ = [
    "DEFAULT_MARGIN",
    "AdaptiveRate",
    "AiolimiterLimiter",
    "Limiter",
    "LimiterRegistry",
    "RateFeedback",
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


@runtime_checkable
class RateFeedback(Protocol):
    """Optional: a limiter that wants to hear how its calls fared.

    :func:`~tower_async.retries.send_with_retries` calls these after every response when the
    limiter has them; they must be cheap and must not raise.
    """

    def on_throttled(self, retry_after: float | None = None) -> None:
        """The server answered 429; ``retry_after`` is its hint in seconds, if any."""
        ...

    def on_success(self) -> None:
        """The server let a call through its rate limit (any status but 429)."""
        ...


class AdaptiveRate:
    """AIMD for one token's rate: cut on a 429 (once per window), creep back on success.

    Pure arithmetic on ``clock`` (seconds, monotonic; inject a fake one in tests).
    :meth:`throttled` and :meth:`succeeded` return the new rate when they changed it, else
    ``None``.

    * A 429 cuts the rate, then no other 429 cuts it for ``window`` seconds (or the server's
      ``retry_after``, if longer, up to 60 s): calls already sent into a full window carry no
      news.  The cut is ``x factor``; when callers are queued on the bucket (``saturated``)
      the controller instead goes to the number of calls the server let through in the last
      ``window`` - what the server allows this token - and at least one ``step`` down.  One
      cut never goes below ``rate x deepest``, and no cut below ``minimum``.
    * After ``recover_after`` seconds without a 429 and with successes, the rate rises by
      ``step x limit``, up to ``limit``.  A rise that earns a 429 before the next one is due
      was a failed probe of the server's limit: the wait before the next rise doubles (up to
      ``8 x recover_after``); a rise that holds halves it again.
    """

    __slots__ = (
        "_accepted",
        "_changed_at",
        "_hold_until",
        "_limit",
        "_patience",
        "_probing",
        "_rate",
        "clock",
        "deepest",
        "factor",
        "minimum",
        "recover_after",
        "step",
        "window",
    )

    MAX_PATIENCE = 8

    def __init__(
        self,
        limit: float,
        *,
        factor: float = 0.7,
        deepest: float = 0.25,
        minimum: float = 1.0,
        step: float = 0.05,
        recover_after: float = 3.0,
        window: float = 1.0,
        clock: Clock | Callable[[], float] = time.monotonic,
    ) -> None:
        _check_rate(limit)
        if not (0 < deepest <= factor < 1):
            raise ValueError("need 0 < deepest <= factor < 1")
        if not (minimum > 0 and step > 0 and recover_after >= 0 and window >= 0):
            raise ValueError("minimum and step must be > 0, recover_after and window >= 0")
        self.factor = factor
        self.deepest = deepest
        self.minimum = minimum
        self.step = step
        self.recover_after = recover_after
        self.window = window
        self.clock = monotonic_of(clock)  # a Clock (tw.clock) or a () -> seconds
        self._limit = float(limit)
        self._rate = float(limit)
        self._changed_at = -math.inf  # last change of the rate, or last 429
        self._hold_until = -math.inf  # no cut before this
        self._patience = 1  # x recover_after before the next rise
        self._probing = False  # the last change was a rise
        self._accepted: deque[float] = deque()  # times of the successes in the last window

    @property
    def rate(self) -> float:
        """The rate to use now, calls per second."""
        return self._rate

    @property
    def limit(self) -> float:
        """The configured rate: the ceiling of any recovery."""
        return self._limit

    @property
    def next_rise_after(self) -> float:
        """Seconds without a 429 that the next rise waits for (``recover_after x`` patience)."""
        return self.recover_after * self._patience

    def set_limit(self, limit: float) -> float:
        """A new ceiling (the registry lowers it when a session asks for less); returns the
        rate, lowered to the ceiling if it was above."""
        _check_rate(limit)
        self._limit = float(limit)
        self._rate = min(self._rate, self._limit)
        return self._rate

    def throttled(
        self, retry_after: float | None = None, *, saturated: bool = False
    ) -> float | None:
        """A 429.  ``saturated``: callers were queued on the bucket, so the bucket's rate, not
        the callers', set the pace, and the calls accepted in the last window measure what the
        server allows this token."""
        now = self.clock()
        self._changed_at = now  # a rise needs next_rise_after seconds without any 429
        if now < self._hold_until:
            return None
        hold = self.window
        if retry_after is not None and math.isfinite(retry_after):
            hold = max(hold, min(retry_after, 60.0))
        self._hold_until = now + hold
        if self._probing:  # the last rise went too far: probe less often
            self._probing = False
            self._patience = min(self._patience * 2, self.MAX_PATIENCE)
        if saturated:
            self._expire(now)
            new = min(float(len(self._accepted)), self._rate - self.step * self._limit)
            new = max(new, self._rate * self.deepest)
        else:
            new = self._rate * self.factor
        new = max(new, min(self.minimum, self._limit))
        if new >= self._rate:
            return None
        self._rate = new
        return new

    def succeeded(self) -> float | None:
        """A call got through; raises the rate by ``step x limit`` when ``next_rise_after``
        seconds passed since the last change or 429."""
        now = self.clock()
        accepted = self._accepted
        accepted.append(now)
        if len(accepted) > 64 and now - accepted[0] > self.window:
            self._expire(now)
        if self._rate >= self._limit or now - self._changed_at < self.next_rise_after:
            return None
        if self._probing:  # the last rise held
            self._patience = max(1, self._patience // 2)
        self._probing = True
        self._changed_at = now
        self._rate = min(self._limit, self._rate + self.step * self._limit)
        return self._rate

    def _expire(self, now: float) -> None:
        accepted = self._accepted
        edge = now - self.window
        while accepted and accepted[0] <= edge:
            accepted.popleft()

    def __repr__(self) -> str:
        return f"<AdaptiveRate {self._rate:.3g}/s of {self._limit:g}/s>"


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


class _LoopPart:
    """What one event loop needs of a shared bucket: its FIFO of waiters and its aiolimiter
    bucket (both bound to the loop)."""

    __slots__ = ("bucket", "queue")

    def __init__(self, ceiling_interval: float) -> None:
        self.queue = asyncio.Lock()  # FIFO; a cancelled waiter leaves the queue as it was
        self.bucket = AsyncLimiter(1, ceiling_interval)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class AiolimiterLimiter(_ContextManagerMixin):
    """One token's bucket for the whole process: any thread, any event loop.

    A call passes three stages (see the module docstring):

    1. the event loop's FIFO queue (an ``asyncio.Lock``): one task per loop at the gate;
    2. the **gate**, shared by every loop and thread of the process: a lock-protected
       "earliest next release" (``time.monotonic``).  A call passes when ``interval`` has
       gone by since the previous release *from any loop*, and the release is stamped when it
       happens, so a late wake-up can only lower the rate, never bunch calls.  The gate
       carries the rate in force (lowered by the adaptive controller or by :meth:`tighten`);
       a change re-arms the waiters of every loop;
    3. a fixed-rate aiolimiter bucket per loop at the configured ``limit`` without the margin
       (``AsyncLimiter(1, 1 / limit)``, public API only, never re-tuned): a hard per-loop
       ceiling behind the gate.  The gate's spacing is always wider, so it never waits.

    ``key`` is only used in ``repr`` and logs (a prefix of it); pass a digest, never a token.
    With an :class:`AdaptiveRate` controller (``adaptive=``), :meth:`on_throttled` and
    :meth:`on_success` move the rate between the controller's floor and ``limit``; without
    one they do nothing.  ``released`` counts the calls let through.  ``clock`` (seconds,
    monotonic, the same in every thread) times the gate; tests pass a fake one.
    """

    __slots__ = (
        "_adaptive",
        "_clock",
        "_guard",
        "_interval",
        "_last",
        "_limit",
        "_margin",
        "_parts",
        "_rate",
        "_sleepers",
        "_waiting",
        "key",
        "released",
    )

    def __init__(
        self,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN,
        key: str = "",
        adaptive: AdaptiveRate | None = None,
        clock: Clock | Callable[[], float] = time.monotonic,
    ) -> None:
        _check_rate(rate)
        if not (margin >= 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a finite number >= 0, not {margin!r}")
        self.key = key
        self._clock = monotonic_of(clock)
        self._margin = margin
        self._limit = float(rate)
        self._rate = float(rate)
        self._interval = (1.0 + margin) / self._rate
        self._guard = threading.Lock()  # every field below, from any thread
        self._last = -math.inf  # clock() of the last release
        self._sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._parts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPart] = (
            weakref.WeakKeyDictionary()
        )
        self._waiting = 0
        self.released = 0
        self._adaptive: AdaptiveRate | None = None
        if adaptive is not None:
            self.adapt(adaptive)

    @property
    def rate(self) -> float:
        """The rate in force now, calls per second (below ``limit`` after a 429 when adaptive)."""
        return self._rate

    @property
    def limit(self) -> float:
        """The configured rate, calls per second: the most this bucket ever allows."""
        return self._limit

    @property
    def interval(self) -> float:
        """Minimum seconds between two releases (process-wide)."""
        return self._interval

    @property
    def adaptive(self) -> AdaptiveRate | None:
        """The controller that adapts the rate, or ``None``."""
        return self._adaptive

    @property
    def waiting(self) -> int:
        """Callers inside :meth:`acquire` now, over every loop and thread."""
        return self._waiting

    def adapt(self, controller: AdaptiveRate | None = None) -> AdaptiveRate:
        """Turn adaptation on (a no-op when it is on already); returns the controller."""
        with self._guard:
            if self._adaptive is None:
                if controller is None:
                    controller = AdaptiveRate(self._limit)
                controller.set_limit(self._limit)
                self._adaptive = controller
            adaptive, rate = self._adaptive, self._adaptive.rate
        if rate < self._rate:
            self._set_rate(rate)
        return adaptive

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        part = self._parts.get(loop) or self._part_for(loop)
        with self._guard:
            self._waiting += 1
        try:
            async with part.queue:
                await self._pass_gate(loop)
                await part.bucket.acquire()
        finally:
            with self._guard:
                self._waiting -= 1

    def _part_for(self, loop: asyncio.AbstractEventLoop) -> _LoopPart:
        with self._guard:
            part = self._parts.get(loop)
            if part is None:
                # a part refers to its loop, so the weak keys alone would never let go
                for closed in [old for old in self._parts if old.is_closed()]:
                    del self._parts[closed]
                part = self._parts[loop] = _LoopPart(1.0 / self._limit)
            return part

    def _try_pass(self) -> float:
        """Release one call now (returns 0.0) or say how many seconds to wait."""
        with self._guard:
            now = self._clock()
            wait = self._last + self._interval - now
            if wait > 0:
                return wait
            self._last = now
            self.released += 1
            return 0.0

    async def _pass_gate(self, loop: asyncio.AbstractEventLoop) -> None:
        while (delay := self._try_pass()) > 0:
            fut: asyncio.Future[None] = loop.create_future()
            handle = loop.call_later(delay, _wake, fut)
            entry = (loop, fut)
            with self._guard:
                self._sleepers.add(entry)
            try:
                await fut  # a cancellation leaves the gate as it was: nothing was released
            finally:
                handle.cancel()
                with self._guard:
                    self._sleepers.discard(entry)

    def tighten(self, rate: float) -> None:
        """Lower the configured rate (never raises it).  Used when two sessions ask for
        different rates for the same token: the stricter one wins, since the server's limit is
        per token.  Buckets already made for a loop keep their (higher) ceiling; the gate
        enforces the new one."""
        _check_rate(rate)
        with self._guard:
            if rate >= self._limit:
                return
            self._limit = float(rate)
            if self._adaptive is not None:
                self._adaptive.set_limit(rate)
        if rate < self._rate:
            self._set_rate(rate)

    # -- RateFeedback ----------------------------------------------------------------------

    def on_throttled(self, retry_after: float | None = None) -> None:
        if self._adaptive is None:
            return
        with self._guard:
            old = self._rate
            new = self._adaptive.throttled(retry_after, saturated=self._waiting > 0)
        if new is not None:
            self._set_rate(new)
            logger.info(
                "bucket %s...: 429 (retry after %s); lowering the rate from %.3g/s to %.3g/s",
                self.key[:12] or "-",
                "-" if retry_after is None else f"{retry_after:g}s",
                old,
                new,
            )

    def on_success(self) -> None:
        if self._adaptive is None:
            return
        with self._guard:
            old = self._rate
            new = self._adaptive.succeeded()
        if new is not None:
            self._set_rate(new)
            logger.info(
                "bucket %s...: no 429 lately; raising the rate from %.3g/s to %.3g/s "
                "(limit %g/s; next rise after %gs without a 429)",
                self.key[:12] or "-",
                old,
                new,
                self._limit,
                self._adaptive.next_rise_after,
            )

    def _set_rate(self, rate: float) -> None:
        """Change the gate's rate and re-arm every waiter (on any loop) at the new spacing.

        The time of the last release is kept, so a change never admits an extra call: the
        next release is ``interval`` (the new one) after the last, whichever loop made it.
        """
        with self._guard:
            self._rate = float(rate)
            self._interval = (1.0 + self._margin) / self._rate
            sleepers = list(self._sleepers)
        for loop, fut in sleepers:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody to wake
                loop.call_soon_threadsafe(_wake, fut)

    def __repr__(self) -> str:
        short = self.key[:12] + "..." if self.key else "-"
        mode = f" adaptive limit={self._limit:g}/s" if self._adaptive is not None else ""
        return (
            f"<AiolimiterLimiter key={short} rate={self._rate:.3g}/s "
            f"interval={self._interval * 1000:.1f}ms{mode}>"
        )


def _check_rate(rate: float) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number > 0, not {rate!r}")


def token_key(token: str | None) -> str:
    """The registry key for a token: its SHA-256 hex digest (``None`` counts as ``""``)."""
    return hashlib.sha256((token or "").encode("utf-8")).hexdigest()


class LimiterRegistry:
    """One bucket per token digest, for every event loop and thread of the process.

    The process-wide instance behind :func:`get_limiter`; tests can make their own.
    """

    def __init__(self, *, margin: float = DEFAULT_MARGIN) -> None:
        self._margin = margin
        self._guard = threading.Lock()
        self._buckets: dict[str, AiolimiterLimiter] = {}

    def get(self, token: str | None, rate: float | None, *, adaptive: bool = True) -> Limiter:
        """The shared limiter for ``token``, usable from any loop or thread.

        ``rate`` is calls per second; ``None`` or ``0`` means no limiting.  If the bucket for
        this token already exists with a higher rate, it is lowered to ``rate``.  ``adaptive``
        (default): the bucket slows down on 429s and recovers (:class:`AdaptiveRate`); like a
        lower rate, asking for it on an existing bucket turns it on for every user of the
        token, and ``adaptive=False`` does not turn it off.
        """
        if rate is None or rate == 0:
            return _UNLIMITED
        _check_rate(rate)
        key = token_key(token)
        with self._guard:
            limiter = self._buckets.get(key)
            if limiter is None:
                limiter = self._buckets[key] = AiolimiterLimiter(rate, margin=self._margin, key=key)
                rate = limiter.limit
        if rate < limiter.limit:
            logger.info(
                "lowering the rate limit of bucket %s... from %g/s to %g/s",
                key[:12],
                limiter.limit,
                rate,
            )
            limiter.tighten(rate)
        if adaptive:
            limiter.adapt()
        return limiter

    def clear(self) -> None:
        """Forget every bucket (tests)."""
        with self._guard:
            self._buckets.clear()

    def __repr__(self) -> str:
        return f"<LimiterRegistry buckets={len(self._buckets)}>"


_REGISTRY = LimiterRegistry()


def get_limiter(token: str | None, rate: float | None, *, adaptive: bool = True) -> Limiter:
    """The process-wide limiter for ``token``; see :meth:`LimiterRegistry.get`."""
    return _REGISTRY.get(token, rate, adaptive=adaptive)
