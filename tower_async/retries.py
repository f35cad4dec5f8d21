"""Retries: when to re-send a request, how long to wait, and the loop that does it.

Small policies, each testable with a fake clock and a seeded :class:`random.Random`:

* :class:`ThrottlePolicy` - a 429 waits for ``Retry-After`` (delta-seconds or an HTTP date,
  against the wall clock; or the "Wait Nsecs" message).
  ``0`` is floored to a short pause (0.25 s + up to 0.25 s jitter, so 0.25-0.5 s); a wait
  above ``cap`` (60 s) is not waited at all: the loop gives up and the session raises
  ``RateLimited``, whose ``retry_after`` tells the caller how long.  A 429 without a usable
  hint (none, garbage, negative, ``nan``, ``inf``) pauses 0.25-0.5 s and counts towards
  ``max_attempts`` like a failure.  A 503's ``Retry-After`` is honoured under the same cap.
* :class:`ExponentialBackoff` - 502/503/504 and transport errors: full jitter,
  ``uniform(0, min(max_backoff, base * 2 ** (attempt - 1)))`` with base 0.2 s, max 20 s.
* :class:`RetryBudget` - a per-session token bucket (botocore's retry quota): a retry of a
  5xx costs 5 tokens, of a transport error 10, out of 500; a success refills 1, or refunds
  what its own retries cost.  A dead server therefore sees at most ~50-100 retries from a
  session before calls fail fast, instead of 4 retries for every call.  429s are paced by the
  server's ``Retry-After`` and cost nothing.
* :func:`is_safe_to_resend` - idempotent calls are retried on all of the above.  A
  non-idempotent call (POST; ``CreateWorkflowLaunch``) is re-sent only when the server provably
  did not process it: 429, 503, or a :class:`~tower_async.errors.TransportError` with
  ``may_have_been_processed=False``.
* :class:`RetryPolicy` composes them with ``max_attempts`` (5, counting the first).  429s with
  a usable ``Retry-After`` do not count towards ``max_attempts``: a throttled call is the
  server pacing the client, not a failure, so it is retried up to
  ``ThrottlePolicy.max_retries`` (50) times on its own count.
  Otherwise a server limit below the client's (another process sharing the token, an
  Enterprise install with a lower limit) made busy callers give up with ``RateLimited`` after
  five 429s in a row.  ``max_attempts=1`` still disables every retry.

:func:`send_with_retries` runs the loop: it acquires the limiter before *every* attempt, so
retries go through the bucket too; tells a limiter that supports
:class:`~tower_async.ratelimit.RateFeedback` about every 429 (with its ``Retry-After`` hint) and
every other response, so that an adaptive bucket can slow down to the server's limit; and
returns the final response (the session turns an error status into ``ApiError``) or re-raises
the last ``TransportError``.  With ``deadline=`` (seconds on the clock, from the first attempt)
no retry is made whose wait would end past it; the last response or error is returned instead.
A :class:`~tower_async.errors.TransportError` with ``retryable=False`` (``SessionClosed``) is
never retried.  Each retry is logged
on ``tower_async.retries`` with the operation id, status or error, attempt and wait - never
headers, which carry the token.  Cancellation during a limiter wait or a backoff sleep
propagates as ``CancelledError``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ._retry_after import parse_retry_after
from .clock import SYSTEM_CLOCK, Clock, SystemClock
from .errors import TransportError
from .ratelimit import Limiter, RateFeedback

__all__ = [
    "IDEMPOTENT_METHODS",
    "SYSTEM_CLOCK",
    "Clock",
    "Decision",
    "ExponentialBackoff",
    "ResponseLike",
    "RetryBudget",
    "RetryContext",
    "RetryEvent",
    "RetryPolicy",
    "SystemClock",
    "ThrottlePolicy",
    "is_idempotent_method",
    "is_safe_to_resend",
    "parse_retry_after",
    "send_with_retries",
]

logger = logging.getLogger("tower_async.retries")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
THROTTLED = 429
#: Statuses that are retried (subject to :func:`is_safe_to_resend`).
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses that prove the server did not act on the request.
NOT_PROCESSED_STATUSES = frozenset({429, 503})

# -- what an attempt produced ------------------------------------------------------------------


class ResponseLike(Protocol):
    """The part of ``tower_async.sansio.RawResponse`` the retry layer reads."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...


R = TypeVar("R", bound=ResponseLike)


@dataclass(frozen=True, slots=True)
class RetryContext:
    """One finished attempt: either a response or a transport error."""

    operation_id: str
    method: str
    idempotent: bool
    attempt: int  # 1-based number of the attempt that just ended
    response: ResponseLike | None = None
    error: TransportError | None = None
    throttled: int = 0  # how many of the attempts so far (this one included) were 429s

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an attempt.  ``cost`` is what the retry took from the budget."""

    retry: bool
    wait: float = 0.0
    reason: str = ""
    cost: int = 0


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Passed to the ``on_retry`` hook before each backoff sleep."""

    operation_id: str
    method: str
    attempt: int  # the attempt that failed (1-based); the next one is attempt + 1
    max_attempts: int
    status: int | None  # the response status, or None for a transport error
    error: TransportError | None
    wait: float  # seconds until the next attempt (before the limiter)
    reason: str


# -- helpers ----------------------------------------------------------------------------------


def is_idempotent_method(method: str) -> bool:
    """The default for ``idempotent=``: GET, HEAD, PUT, DELETE, OPTIONS."""
    return method.upper() in IDEMPOTENT_METHODS


def is_safe_to_resend(ctx: RetryContext) -> bool:
    """Whether sending the request again cannot act on it twice."""
    if ctx.idempotent:
        return True
    if ctx.error is not None:
        return not ctx.error.may_have_been_processed
    return ctx.status in NOT_PROCESSED_STATUSES


# -- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Full-jitter exponential backoff: ``uniform(0, min(max_backoff, base * 2**(n-1)))``
    after the n-th failed attempt."""

    base: float = 0.2
    max_backoff: float = 20.0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait after the ``attempt``-th failure."""
        exponent = min(max(attempt - 1, 0), 62)
        return min(self.max_backoff, self.base * 2.0**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How long to wait on a 429 (and on a 503 that says ``Retry-After``).

    :meth:`delay` returns ``None`` when the server's wait exceeds ``cap``: give up.
    Without a hint, the caller falls back to exponential backoff (floored at ``floor``).
    """

    floor: float = 0.25
    jitter: float = 0.25
    cap: float = 60.0
    max_retries: int = 50

    def hint(self, response: ResponseLike) -> float | None:
        return parse_retry_after(response.headers, response.body)

    def delay(self, hinted: float, rng: random.Random) -> float | None:
        if hinted > self.cap:
            return None
        return max(hinted, self.floor) + rng.uniform(0.0, self.jitter)


@dataclass(slots=True)
class RetryBudget:
    """A token bucket of retries (botocore's ``RetryQuota``), one per session.

    Retries take tokens; a success gives back what its own retries took, or
    ``success_refill`` if it needed none.  When empty, failures are returned at once.
    """

    capacity: int = 500
    retry_cost: int = 5
    transport_error_cost: int = 10
    success_refill: int = 1
    available: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.capacity

    def acquire(self, cost: int) -> bool:
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def release(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + amount)

    def record_success(self, spent: int) -> None:
        if self.available < self.capacity:  # a full bucket (the common case) takes nothing
            self.release(spent if spent > 0 else self.success_refill)


@dataclass(slots=True)
class RetryPolicy:
    """The composed policy.  Keep one per session: it holds the session's budget.

    ``RetryPolicy(max_attempts=1)`` disables retries; ``budget=None`` removes the budget.
    """

    max_attempts: int = 5
    backoff: ExponentialBackoff = field(default_factory=ExponentialBackoff)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def decide(self, ctx: RetryContext) -> Decision:
        """Retry or not after ``ctx``; a positive decision has already taken its budget."""
        if ctx.error is None and ctx.status not in RETRYABLE_STATUSES:
            return Decision(False, reason="not retryable")
        if ctx.error is not None and not ctx.error.retryable:
            return Decision(False, reason=f"not retryable ({ctx.error.reason})")
        if not is_safe_to_resend(ctx):
            return Decision(False, reason="not idempotent and may have been processed")
        if self.max_attempts == 1:
            return Decision(False, reason="retries disabled (max_attempts=1)")
        hinted: float | None = None
        if ctx.response is not None and ctx.status in (THROTTLED, 503):
            hinted = self.throttle.hint(ctx.response)
        if ctx.status == THROTTLED and hinted is not None:
            # paced by the server: counted on its own (ctx.throttled counts these only)
            if ctx.throttled > self.throttle.max_retries:
                return Decision(False, reason=f"gave up after {ctx.throttled} throttled attempts")
        elif ctx.attempt - ctx.throttled >= self.max_attempts:
            return Decision(False, reason=f"gave up after {ctx.attempt} attempts")

        if hinted is not None:
            wait = self.throttle.delay(hinted, self.rng)
            if wait is None:
                return Decision(
                    False,
                    reason=f"server asks to wait {hinted:g}s, above the {self.throttle.cap:g}s cap",
                )
        elif ctx.status == THROTTLED:
            # no usable Retry-After (absent, garbage, negative, nan): a short bounded pause
            wait = self.throttle.floor + self.rng.uniform(0.0, self.throttle.jitter)
        else:
            wait = self.backoff.delay(ctx.attempt, self.rng)

        cost = 0
        if self.budget is not None and ctx.status != THROTTLED:
            cost = (
                self.budget.transport_error_cost
                if ctx.error is not None
                else self.budget.retry_cost
            )
            if not self.budget.acquire(cost):
                return Decision(False, reason="retry budget exhausted")
        return Decision(True, wait=wait, reason=_describe(ctx), cost=cost)

    def record_success(self, spent: int) -> None:
        if self.budget is not None:
            self.budget.record_success(spent)

    def refund(self, cost: int) -> None:
        """Give back a retry's cost when it never happened (cancelled while waiting)."""
        if self.budget is not None and cost:
            self.budget.release(cost)


def _describe(ctx: RetryContext) -> str:
    if ctx.error is not None:
        return f"transport error ({ctx.error.reason})"
    return f"HTTP {ctx.status}"


# -- the loop ---------------------------------------------------------------------------------


_FEEDBACK: dict[type, bool] = {}


def _feedback(limiter: Limiter | None) -> RateFeedback | None:
    """The limiter as a RateFeedback, if it is one (memoised per type: the runtime
    protocol check costs microseconds on every call)."""
    if limiter is None:
        return None
    kind = type(limiter)
    known = _FEEDBACK.get(kind)
    if known is None:
        known = _FEEDBACK[kind] = isinstance(limiter, RateFeedback)
    return limiter if known else None  # type: ignore[return-value]


async def send_with_retries(
    send: Callable[[], Awaitable[R]],
    *,
    operation_id: str,
    method: str,
    idempotent: bool,
    limiter: Limiter | None,
    policy: RetryPolicy,
    clock: Clock = SYSTEM_CLOCK,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_attempt: Callable[[int, float], None] | None = None,
    deadline: float | None = None,
    first: tuple[R | None, TransportError | None] | None = None,
    started: float | None = None,
) -> R:
    """Send with ``send()`` until the policy says stop.

    Returns the last response (a success, or the error response when giving up); re-raises
    the last :class:`TransportError` when giving up on one.  Other exceptions from ``send``
    (and from ``on_retry``) propagate at once.  ``limiter.acquire()`` runs before every attempt;
    a limiter that is also a :class:`~tower_async.ratelimit.RateFeedback` hears of every
    response: ``on_throttled(retry_after)`` for a 429, ``on_success()`` for any other status.
    ``on_attempt(attempt, waited)`` (observability) hears of each attempt just before it is
    sent, with the seconds it waited for the limiter.
    ``deadline`` (seconds on ``clock`` from the first attempt) bounds the call: a retry whose
    wait would end past it is not made, and the last response or error is returned/raised.
    ``first``: the outcome ``(response, None)`` or ``(None, error)`` of a first attempt the
    caller already made (after acquiring the limiter, at ``started`` on ``clock``); the
    loop takes it as attempt 1 and sends from attempt 2 on.
    """
    feedback = _feedback(limiter)
    spent = 0
    throttled = 0
    attempt = 0
    if started is None:
        started = clock.monotonic()
    while True:
        attempt += 1
        if first is not None:
            (response, error), first = first, None
        else:
            response, error = await _attempt(send, limiter, on_attempt, attempt)
        if response is not None:
            throttled += _hear(response, policy, feedback)
            if 200 <= response.status < 400:
                # the common case, decided without building a RetryContext
                policy.record_success(spent)
                return response
        ctx = RetryContext(operation_id, method, idempotent, attempt, response, error, throttled)
        decision = policy.decide(ctx)
        if decision.retry and deadline is not None:
            decision = _within_deadline(decision, policy, clock, started, deadline)
        if not decision.retry:
            return _give_up(ctx, decision, policy, spent, started, clock, response, error)

        spent += decision.cost
        _announce_retry(ctx, decision, policy.max_attempts, on_retry)
        await _pause(clock, decision, policy)


async def _attempt(
    send: Callable[[], Awaitable[R]],
    limiter: Limiter | None,
    on_attempt: Callable[[int, float], None] | None,
    attempt: int,
) -> tuple[R | None, TransportError | None]:
    """One attempt through the limiter: ``(response, None)`` or ``(None, transport error)``."""
    if on_attempt is not None:  # observed: time the bucket wait
        await _acquire_observed(limiter, on_attempt, attempt)
    elif limiter is not None:
        await limiter.acquire()
    try:
        return await send(), None
    except TransportError as exc:
        return None, exc


async def _pause(clock: Clock, decision: Decision, policy: RetryPolicy) -> None:
    """Sleep before the retry; a retry that never happens (cancelled) gives its cost back."""
    try:
        await clock.sleep(decision.wait)
    except BaseException:
        policy.refund(decision.cost)
        raise


async def _acquire_observed(
    limiter: Limiter | None, on_attempt: Callable[[int, float], None], attempt: int
) -> None:
    """Wait for the limiter, then tell ``on_attempt`` how long that took."""
    waited_from = time.perf_counter()
    if limiter is not None:
        await limiter.acquire()
    on_attempt(attempt, time.perf_counter() - waited_from)


def _hear(response: ResponseLike, policy: RetryPolicy, feedback: RateFeedback | None) -> int:
    """Tell the limiter of the response; 1 for a 429 the server paced (a usable hint)."""
    if response.status != THROTTLED:
        if feedback is not None:
            feedback.on_success()
        return 0
    hint = policy.throttle.hint(response)
    if feedback is not None:
        feedback.on_throttled(hint)
    return 0 if hint is None else 1


def _within_deadline(
    decision: Decision, policy: RetryPolicy, clock: Clock, started: float, deadline: float
) -> Decision:
    """``decision``, or a refusal (its cost refunded) when the retry would end too late."""
    if clock.monotonic() + decision.wait <= started + deadline:
        return decision
    policy.refund(decision.cost)
    return Decision(False, reason=f"the retry would end past the call's deadline of {deadline:g}s")


def _announce_retry(
    ctx: RetryContext,
    decision: Decision,
    max_attempts: int,
    on_retry: Callable[[RetryEvent], None] | None,
) -> None:
    """Log the retry and hand it to ``on_retry``."""
    logger.info(
        "%s (%s): %s on attempt %d/%d; retrying in %.2fs",
        ctx.operation_id,
        ctx.method,
        decision.reason,
        ctx.attempt,
        max_attempts,
        decision.wait,
    )
    if on_retry is not None:
        on_retry(
            RetryEvent(
                operation_id=ctx.operation_id,
                method=ctx.method,
                attempt=ctx.attempt,
                max_attempts=max_attempts,
                status=ctx.status,
                error=ctx.error,
                wait=decision.wait,
                reason=decision.reason,
            )
        )


def _give_up(
    ctx: RetryContext,
    decision: Decision,
    policy: RetryPolicy,
    spent: int,
    started: float,
    clock: Clock,
    response: R | None,
    error: TransportError | None,
) -> R:
    if response is not None:
        if 200 <= response.status < 400:
            policy.record_success(spent)
        elif ctx.attempt > 1 or response.status in RETRYABLE_STATUSES:
            _log_give_up(ctx, decision, started, clock)
        return response
    assert error is not None
    _log_give_up(ctx, decision, started, clock)
    raise error


def _log_give_up(ctx: RetryContext, decision: Decision, started: float, clock: Clock) -> None:
    logger.info(
        "%s (%s): %s on attempt %d; not retrying: %s (%.2fs since the first attempt)",
        ctx.operation_id,
        ctx.method,
        _describe(ctx),
        ctx.attempt,
        decision.reason,
        clock.monotonic() - started,
    )
