"""A rate limit shared by every process and host that uses one token: a bucket in Redis.

Install with ``pip install 'tower-async[redis]'`` (redis-py >= 5, its ``redis.asyncio`` API) and
pass a URL or an object::

    Tower(rate_limit=20, limiter="redis://redis.internal:6379/0")
    Tower(limiter=RedisLimiter("redis://redis.internal:6379/0", token, 20))

Why redis-py: it is the client the Redis project itself maintains, ships its asyncio API in the
same package as the sync one (``redis.asyncio``, since 4.2; 5.x and later are the supported
lines), has typed stubs inline, and covers ``EVALSHA``/``register_script``, TLS (``rediss://``)
and Sentinel/Cluster.  coredis is a fine asyncio-first client but a one-maintainer project
with a smaller user base; for one Lua script per call nothing in it is worth the extra
dependency risk.

The algorithm
-------------
One Lua script (``EVALSHA`` through ``register_script``) runs atomically in Redis, timed by
Redis ``TIME``, so host clocks do not matter.  It keeps, per token, the time of the last
release and the rate in force, and lets a call through when ``(1 s + margin) / rate`` has gone
by since the last release from *any* client (the capacity-1 shape of
:mod:`tower_async.ratelimit`: no 1 s window holds more than the limit).  Otherwise it answers
how long to wait; the client sleeps that long on its own loop and asks again.  A release is
stamped when Redis grants it, never reserved ahead, so a late or cancelled client costs
nothing: a slow process lowers its own rate, it cannot bunch calls.  One refinement keeps the
schedule from drifting by each waiter's wake-up lag (the event loop's 1 ms timer granularity
plus a round trip, which cost ~4 % of the rate): a turn taken at most ``tolerance`` (2 ms)
after it opened is stamped at the time it opened.  So any ``L + 1`` releases span at least
``1 s + margin - tolerance`` (1.018 s by default) instead of ``1 s + margin``.  Per process
and loop one task at a time asks Redis (the others queue locally), so N processes cost about
N script calls per release.

The key is ``tower-async:rl:<SHA-256 of the token>`` (a hash and a list); the token never
leaves the process.  Both expire an hour after the last use.

Adaptive rate, shared
---------------------
With ``adaptive=True`` (the default) the :class:`~tower_async.ratelimit.AdaptiveRate` rules
run inside the same script on the shared state: a 429 seen by one worker
(:meth:`RedisLimiter.on_throttled`, reported at once in a background task) lowers the rate for
every worker, at most once per window; successes (counted locally, sent with the next
acquire) raise it by 5 % of the limit after 3 s without a 429, with the same probe back-off.
"Saturated" (go to what the server let through) means a caller of this process is waiting,
or some worker had to wait within the last interval.  The configured limit in Redis is the
lowest any client asked for (the stricter wins, as in the in-process registry).

When Redis is unreachable
-------------------------
Every Redis call is bounded (``timeout``, default 2 s, for connect and reply; no client-side
retries).  ``on_unavailable="fail"`` (default) raises :class:`LimiterUnavailable` from
:meth:`~RedisLimiter.acquire`: no call goes out unmetered.  ``on_unavailable="local"`` logs a
warning and uses this process's in-process bucket for the token
(:func:`~tower_async.ratelimit.get_limiter`) for ``retry_after`` seconds (default 5) before
trying Redis again: other processes are then not counted, so expect some 429s, which the retry
layer absorbs.  In a URL: ``redis://host:6379/0?on_unavailable=local``.

Waits are bounded: each sleep is at most one interval, and a caller that did not get a turn
within ``max_wait`` seconds (default 300) gets :class:`LimiterUnavailable`.  Cancelling a
waiting task propagates at once, always (redis-py calls are shielded and left to finish: a
cancellation landing inside redis-py could be swallowed); if it lands while a script call is
in flight, Redis may have granted that call a turn that is then not used (a lost slot, never
an extra call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import TowerError
from .ratelimit import DEFAULT_MARGIN, AdaptiveRate, Limiter, get_limiter, token_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "SCHEMES",
    "LimiterTimeout",
    "LimiterUnavailable",
    "RedisLimiter",
    "check_redis_url",
    "limiter_from_url",
    "limiter_url_options",
    "redis_location",
    "shielded",
]

logger = logging.getLogger("tower_async.ratelimit")

SCHEMES = ("redis", "rediss", "unix")
OnUnavailable = Literal["fail", "local"]
T = TypeVar("T")


class LimiterUnavailable(TowerError):
    """The shared rate limiter (Redis) could not be reached, or gave no turn in time."""


class LimiterTimeout(LimiterUnavailable):
    """Redis answered, but gave this caller no turn within ``max_wait`` seconds."""


def redis_location(url: str) -> str:
    """``host:port/db`` of a Redis URL, without user or password (for messages)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 6379}{parts.path or '/0'}"


def check_redis_url(url: str, *, where: str = "limiter") -> None:
    """Raise ``ValueError`` naming ``where`` unless ``url`` is a Redis URL."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"{where}={url.split('?')[0][:60]!r} is not a Redis URL "
            f"(expected {' or '.join(s + '://...' for s in SCHEMES)})"
        )


def _settle(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an abandoned call is not an error


async def shielded(call: Awaitable[T], pending: set[asyncio.Task[Any]]) -> T:
    """Await a redis-py call so that cancelling the caller raises ``CancelledError`` at once,
    always: a cancellation that lands mid-command can be swallowed inside redis-py (seen with
    redis-py 8.1: the task went on as if not cancelled).  The command itself finishes in the
    background, bounded by the socket timeout; ``pending`` keeps a reference until then."""
    task = asyncio.ensure_future(call)
    pending.add(task)
    task.add_done_callback(pending.discard)
    task.add_done_callback(_settle)
    return await asyncio.shield(task)


def connect(url: str, timeout: float) -> Redis:
    """A redis-py asyncio client for ``url`` whose every call is bounded by ``timeout``."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:
        raise TowerError(
            "a redis:// limiter or ledger needs redis-py: pip install 'tower-async[redis]'"
        ) from None
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    return client


# KEYS[1]: the state hash; KEYS[2]: the list of recent success times.
# ARGV: op ("acquire" | "throttled"), limit, margin, adaptive (0/1), successes to record,
#       retry_after ("" = none), saturated (0/1), factor, deepest, minimum, step,
#       recover_after, window, ttl_ms, tolerance.
# Returns {seconds to wait ("0" = go), rate in force} as strings (Lua numbers would be
# truncated to integers on the way out).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function f(x) return string.format('%.17g', x) end
local op, limit, margin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local adaptive, n = ARGV[4] == '1', tonumber(ARGV[5])
local factor, deepest, minimum = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local step, recover, window = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local never = -1e18
local h = redis.call('HMGET', KEYS[1], 'limit', 'rate', 'last', 'changed', 'hold',
                     'patience', 'probing', 'queued')
if tonumber(h[1]) and tonumber(h[1]) < limit then limit = tonumber(h[1]) end
local rate = math.min(tonumber(h[2]) or limit, limit)
local last, changed = tonumber(h[3]) or never, tonumber(h[4]) or never
local hold, patience = tonumber(h[5]) or never, tonumber(h[6]) or 1
local probing, queued = h[7] == '1', tonumber(h[8]) or never
local function expire()
  while true do
    local first = redis.call('LINDEX', KEYS[2], 0)
    if not first or tonumber(first) > now - window then return end
    redis.call('LPOP', KEYS[2])
  end
end
if adaptive and n > 0 then
  for i = 1, math.min(n, 200) do redis.call('RPUSH', KEYS[2], f(now)) end
  redis.call('LTRIM', KEYS[2], -400, -1)
  expire()
  if rate < limit and now - changed >= recover * patience then
    if probing then patience = math.max(1, math.floor(patience / 2)) end
    probing, changed = true, now
    rate = math.min(limit, rate + step * limit)
  end
end
local wait = 0
if op == 'throttled' then
  changed = now
  if now >= hold then
    local span, hint = window, tonumber(ARGV[6])
    if hint then span = math.max(span, math.min(hint, 60)) end
    hold = now + span
    if probing then probing, patience = false, math.min(patience * 2, 8) end
    local new
    if ARGV[7] == '1' or now - queued <= (1 + margin) / rate then
      expire()
      new = math.min(redis.call('LLEN', KEYS[2]), rate - step * limit)
      new = math.max(new, rate * deepest)
    else
      new = rate * factor
    end
    new = math.max(new, math.min(minimum, limit))
    if new < rate then rate = new end
  end
else
  local slot = last + (1 + margin) / rate
  wait = slot - now
  if wait > 0 then
    queued = now
  else
    -- a turn taken at most `tolerance` late keeps the schedule (no drift); later, it restarts
    if -wait <= tonumber(ARGV[15]) then last = slot else last = now end
    wait = 0
  end
end
redis.call('HSET', KEYS[1], 'limit', f(limit), 'rate', f(rate), 'last', f(last),
           'changed', f(changed), 'hold', f(hold), 'patience', f(patience),
           'probing', probing and '1' or '0', 'queued', f(queued))
redis.call('PEXPIRE', KEYS[1], ARGV[14])
redis.call('PEXPIRE', KEYS[2], ARGV[14])
return {f(wait), f(rate)}
"""


class _LoopPart:
    """Per event loop: a redis-py client (its connections belong to the loop), the script
    bound to it, and the FIFO of local waiters."""

    __slots__ = ("client", "queue", "script")

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.script = client.register_script(_SCRIPT)
        self.queue = asyncio.Lock()


class RedisLimiter:
    """The :class:`~tower_async.ratelimit.Limiter` (and ``RateFeedback``) for one token, shared
    through Redis by every process and host that uses it.  See the module docstring.

    ``token`` is hashed at once and not kept.  Usable from any event loop (one client per
    loop); :meth:`aclose` closes the current loop's client.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        rate: float,
        *,
        adaptive: bool = True,
        margin: float = DEFAULT_MARGIN,
        on_unavailable: OnUnavailable = "fail",
        timeout: float = 2.0,
        max_wait: float = 300.0,
        retry_after: float = 5.0,
        tolerance: float = 0.002,
        prefix: str = "tower-async:rl:",
    ) -> None:
        check_redis_url(url)
        _check_options(rate, on_unavailable, timeout > 0 and max_wait > 0 and retry_after >= 0
                       and 0 <= tolerance < margin)  # fmt: skip
        self._url = url
        self.location = redis_location(url)
        self.key = token_key(token)
        self._keys = [f"{prefix}{self.key}", f"{prefix}{self.key}:ok"]
        self.rate = self.limit = float(rate)
        self.adaptive = adaptive
        self._margin = margin
        self.on_unavailable: OnUnavailable = on_unavailable
        self._timeout = timeout
        self._max_wait = max_wait
        self._retry_after = retry_after
        self._tolerance = tolerance
        rules = AdaptiveRate(rate)
        self._rules = [
            str(x)
            for x in (
                rules.factor,
                rules.deepest,
                rules.minimum,
                rules.step,
                rules.recover_after,
                rules.window,
            )
        ]
        # the in-process bucket for the fallback; it hears all feedback, so it is warm
        self._local: Limiter = get_limiter(token, rate, adaptive=adaptive)
        self._parts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPart] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()  # the per-loop parts, from any thread
        self._successes = 0
        self._waiting = 0
        self._local_until = -math.inf
        self._reports: set[asyncio.Task[None]] = set()
        self._inflight: set[asyncio.Task[Any]] = set()

    # -- Limiter ---------------------------------------------------------------------------

    async def acquire(self) -> None:
        if time.monotonic() < self._local_until:
            return await self._local.acquire()
        try:
            await self._acquire_shared()
        except LimiterTimeout:
            raise
        except LimiterUnavailable as exc:
            if self.on_unavailable == "fail":
                raise
            logger.warning(
                "%s; using this process's own bucket for %gs (other processes are not counted)",
                exc,
                self._retry_after,
            )
            self._local_until = time.monotonic() + self._retry_after
            await self._local.acquire()

    async def _acquire_shared(self) -> None:
        loop = asyncio.get_running_loop()
        part = self._part(loop)
        self._waiting += 1
        try:
            async with part.queue:
                give_up = loop.time() + self._max_wait
                while True:
                    successes, self._successes = self._successes, 0
                    wait = await self._call(part, "acquire", successes=successes)
                    if wait <= 0:
                        return
                    if loop.time() + wait > give_up:
                        raise LimiterTimeout(
                            f"rate limiter (Redis at {self.location}): no turn within "
                            f"{self._max_wait:g}s for bucket {self.key[:12]}..."
                        )
                    await asyncio.sleep(wait)
        finally:
            self._waiting -= 1

    async def _call(
        self,
        part: _LoopPart,
        op: str,
        *,
        successes: int = 0,
        retry_after: float | None = None,
        saturated: bool = False,
    ) -> float:
        from redis.exceptions import RedisError

        args: list[Any] = [
            op,
            repr(self.limit),
            repr(self._margin),
            "1" if self.adaptive else "0",
            successes,
            "" if retry_after is None or not math.isfinite(retry_after) else repr(retry_after),
            "1" if saturated else "0",
            *self._rules,
            3_600_000,
            repr(self._tolerance),
        ]
        try:
            wait, rate = await shielded(part.script(keys=self._keys, args=args), self._inflight)
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(
                f"rate limiter: Redis at {self.location} is unavailable "
                f"({type(exc).__name__}: {exc})"
            ) from None
        self._note_rate(float(rate))
        return float(wait)

    def _note_rate(self, rate: float) -> None:
        if rate != self.rate:
            logger.info(
                "shared bucket %s...: rate now %.3g/s (was %.3g/s, limit %g/s)",
                self.key[:12],
                rate,
                self.rate,
                self.limit,
            )
            self.rate = rate

    def _part(self, loop: asyncio.AbstractEventLoop) -> _LoopPart:
        part = self._parts.get(loop)
        if part is None:
            with self._guard:
                part = self._parts.get(loop)
                if part is None:
                    # a part refers to its loop, so the weak keys alone would never let go
                    for closed in [old for old in self._parts if old.is_closed()]:
                        del self._parts[closed]
                    part = self._parts[loop] = _LoopPart(connect(self._url, self._timeout))
        return part

    # -- RateFeedback ----------------------------------------------------------------------

    def on_success(self) -> None:
        if self.adaptive:
            self._successes += 1
        _feedback(self._local, "on_success")

    def on_throttled(self, retry_after: float | None = None) -> None:
        _feedback(self._local, "on_throttled", retry_after)
        if not self.adaptive:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._report(loop, retry_after, self._waiting > 0))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(
        self, loop: asyncio.AbstractEventLoop, retry_after: float | None, saturated: bool
    ) -> None:
        with contextlib.suppress(LimiterUnavailable):  # acquire() will say so
            await self._call(
                self._part(loop), "throttled", retry_after=retry_after, saturated=saturated
            )

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the Redis connections of the running loop (others close with their loop)."""
        for task in list(self._reports):
            task.cancel()
        if self._inflight:  # abandoned calls of cancelled callers: bounded by the timeout
            await asyncio.wait(list(self._inflight), timeout=self._timeout)
        part = self._parts.pop(asyncio.get_running_loop(), None)
        if part is not None:
            await part.client.aclose()

    def __repr__(self) -> str:
        return (
            f"<RedisLimiter {self.location} key={self.key[:12]}... rate={self.rate:.3g}/s "
            f"limit={self.limit:g}/s on_unavailable={self.on_unavailable}>"
        )


def _check_options(rate: float, on_unavailable: str, others_ok: bool) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"RedisLimiter: rate must be a finite number > 0, not {rate!r}")
    if on_unavailable not in ("fail", "local"):
        raise ValueError(
            f"RedisLimiter: on_unavailable must be 'fail' or 'local', not {on_unavailable!r}"
        )
    if not others_ok:
        raise ValueError("RedisLimiter: timeout and max_wait must be > 0, 0 <= tolerance < margin")


def _feedback(limiter: Limiter, name: str, *args: float | None) -> None:
    method = getattr(limiter, name, None)
    if method is not None:
        method(*args)


def limiter_from_url(
    url: str, token: str | None, rate: float | None, *, adaptive: bool = True
) -> Limiter:
    """The limiter for ``Tower(limiter="redis://...")``: a :class:`RedisLimiter` at ``rate``
    (no limiting when ``rate`` is ``None`` or 0).  The URL's ``on_unavailable``, ``timeout``
    and ``margin`` query options go to the limiter; the rest to redis-py."""
    rest, options = limiter_url_options(url)
    if not rate:
        return get_limiter(token, None)
    return RedisLimiter(rest, token, rate, adaptive=adaptive, **options)


def limiter_url_options(url: str, *, where: str = "limiter") -> tuple[str, dict[str, Any]]:
    """``(the URL for redis-py, the limiter's options)`` from a limiter URL; ``ValueError``
    naming ``where`` and the option when one is wrong (checked before anything connects)."""
    check_redis_url(url, where=where)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    on_unavailable = query.pop("on_unavailable", "fail")
    if on_unavailable not in ("fail", "local"):
        raise ValueError(
            f"limiter URL: on_unavailable must be fail or local, not {on_unavailable!r}"
        )
    options = {
        "on_unavailable": on_unavailable,
        "timeout": _url_seconds(query, "timeout", 2.0, above=0.0),
        "margin": _url_seconds(query, "margin", DEFAULT_MARGIN, above=0.002),  # > tolerance
    }
    return urlunsplit(parts._replace(query=urlencode(query))), options


def _url_seconds(query: dict[str, str], name: str, default: float, *, above: float) -> float:
    """``query[name]`` (removed from it) as a finite number of seconds over ``above``."""
    text = query.pop(name, None)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > above):
        raise ValueError(f"limiter URL: {name} must be a number of seconds > {above:g}")
    return value
