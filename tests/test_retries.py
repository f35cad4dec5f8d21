from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tower_async.errors import TransportError
from tower_async.retries import (
    ExponentialBackoff,
    RetryBudget,
    RetryContext,
    RetryEvent,
    RetryPolicy,
    SystemClock,
    ThrottlePolicy,
    is_idempotent_method,
    is_safe_to_resend,
    parse_retry_after,
    send_with_retries,
)

TOKEN = "secret-token-value-123"
RATE_MESSAGE = (
    b'{"message":"Maximum request rate exceeded. Wait 3secs before issuing a new request"}'
)


@dataclass
class Resp:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class FakeClock:
    """Moves only when slept on; records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class BlockingClock(FakeClock):
    """A clock whose sleep never returns on its own (for cancellation)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.get_running_loop().create_future()


class TopRandom(random.Random):
    """``uniform`` returns its upper bound: makes jittered waits deterministic."""

    def uniform(self, a: float, b: float) -> float:
        return b


class BottomRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


class CountingLimiter:
    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self) -> None:
        self.calls += 1


def transport_error(*, processed: bool) -> TransportError:
    return TransportError(
        "Op", "POST", "https://x/y", "connection reset", may_have_been_processed=processed
    )


class Script:
    """A ``send`` that plays back responses/errors in order, counting calls."""

    def __init__(self, outcomes: Iterable[Resp | BaseException]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> Resp:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def run(
    outcomes: Iterable[Resp | BaseException],
    *,
    method: str = "GET",
    idempotent: bool | None = None,
    policy: RetryPolicy | None = None,
    clock: FakeClock | None = None,
    limiter: CountingLimiter | None = None,
    events: list[RetryEvent] | None = None,
) -> tuple[Resp, Script, FakeClock]:
    script = Script(outcomes)
    clock = clock or FakeClock()
    result = await send_with_retries(
        script,
        operation_id="Op",
        method=method,
        idempotent=is_idempotent_method(method) if idempotent is None else idempotent,
        limiter=limiter,
        policy=policy or RetryPolicy(rng=random.Random(7)),
        clock=clock,
        on_retry=events.append if events is not None else None,
    )
    return result, script, clock


# -- Retry-After / 429 -----------------------------------------------------------------------


def test_parse_retry_after_header_and_message() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2
    assert parse_retry_after({"retry-after": "0"}) == 0
    assert parse_retry_after({}, RATE_MESSAGE) == 3
    assert parse_retry_after({"Retry-After": "soon"}, RATE_MESSAGE) == 3
    assert parse_retry_after({"Retry-After": "-4"}) is None
    # an HTTP date is measured against the wall clock; a date in the past means "now"
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert parse_retry_after({}, b'{"message":"nope"}') is None
    assert parse_retry_after({}, b"") is None


async def test_retry_after_zero_is_floored_with_jitter() -> None:
    outcomes = [Resp(429, {"Retry-After": "0"}), Resp(200)]
    _, _, clock = await run(outcomes, policy=RetryPolicy(rng=BottomRandom()))
    assert clock.sleeps == [0.25]
    _, _, clock = await run(outcomes, policy=RetryPolicy(rng=TopRandom()))
    assert clock.sleeps == [0.5]
    for seed in range(20):
        _, _, clock = await run(outcomes, policy=RetryPolicy(rng=random.Random(seed)))
        assert 0.25 <= clock.sleeps[0] <= 0.5


async def test_retry_after_is_waited_plus_jitter() -> None:
    result, script, clock = await run(
        [Resp(429, {"Retry-After": "2"}), Resp(200)], policy=RetryPolicy(rng=TopRandom())
    )
    assert result.status == 200 and script.calls == 2
    assert clock.sleeps == [2.25]


async def test_retry_after_above_cap_gives_up_at_once() -> None:
    limited = Resp(429, {"Retry-After": "120"})
    result, script, clock = await run([limited, Resp(200)])
    assert result is limited  # the session turns it into RateLimited(retry_after=120)
    assert script.calls == 1 and clock.sleeps == []
    result, script, _ = await run(
        [limited, Resp(200)], policy=RetryPolicy(throttle=ThrottlePolicy(cap=300))
    )
    assert result.status == 200 and script.calls == 2


async def test_429_without_header_uses_the_wait_message() -> None:
    result, _, clock = await run(
        [Resp(429, body=RATE_MESSAGE), Resp(200)], policy=RetryPolicy(rng=BottomRandom())
    )
    assert result.status == 200
    assert clock.sleeps == [3.0]


async def test_429_without_any_hint_backs_off_at_least_the_floor() -> None:
    _, _, clock = await run(
        [Resp(429), Resp(429), Resp(200)], policy=RetryPolicy(rng=BottomRandom())
    )
    assert clock.sleeps == [0.25, 0.25]


async def test_429_costs_no_budget() -> None:
    budget = RetryBudget(capacity=0)
    result, script, _ = await run(
        [Resp(429, {"Retry-After": "1"})] * 3 + [Resp(200)], policy=RetryPolicy(budget=budget)
    )
    assert result.status == 200 and script.calls == 4


# -- backoff ---------------------------------------------------------------------------------


def test_backoff_ceiling_grows_and_caps() -> None:
    backoff = ExponentialBackoff(base=0.2, max_backoff=20)
    assert [backoff.ceiling(n) for n in range(1, 10)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 20, 20]
    )
    assert backoff.ceiling(10_000) == 20


def test_backoff_full_jitter_bounds_with_seeded_random() -> None:
    backoff = ExponentialBackoff()
    rng = random.Random(1234)
    for attempt in range(1, 12):
        draws = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= backoff.ceiling(attempt) for d in draws)
        # full jitter: spread over the whole range, not clustered at the top
        assert min(draws) < 0.1 * backoff.ceiling(attempt)
        assert max(draws) > 0.9 * backoff.ceiling(attempt)
    # same seed, same waits
    assert [backoff.delay(3, random.Random(5)) for _ in range(3)] == [
        backoff.delay(3, random.Random(5)) for _ in range(3)
    ]


async def test_backoff_between_attempts_grows() -> None:
    result, script, clock = await run(
        [Resp(503), Resp(502), Resp(504), Resp(200)], policy=RetryPolicy(rng=TopRandom())
    )
    assert result.status == 200 and script.calls == 4
    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8])


async def test_503_with_retry_after_honours_it() -> None:
    _, _, clock = await run(
        [Resp(503, {"Retry-After": "4"}), Resp(200)], policy=RetryPolicy(rng=BottomRandom())
    )
    assert clock.sleeps == [4.0]


async def test_max_attempts() -> None:
    last = Resp(503)
    result, script, clock = await run([Resp(503)] * 4 + [last, Resp(200)])
    assert result is last
    assert script.calls == 5 and len(clock.sleeps) == 4
    result, script, _ = await run([Resp(503), Resp(200)], policy=RetryPolicy(max_attempts=1))
    assert result.status == 503 and script.calls == 1
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


async def test_transport_error_reraised_after_max_attempts() -> None:
    errors = [transport_error(processed=True) for _ in range(3)]
    with pytest.raises(TransportError) as info:
        await run(errors, policy=RetryPolicy(max_attempts=3))
    assert info.value is errors[-1]


async def test_non_retryable_statuses_are_returned_at_once() -> None:
    for status in (200, 201, 204, 400, 401, 403, 404, 409, 500, 501):
        result, script, clock = await run([Resp(status), Resp(200)])
        assert result.status == status and script.calls == 1 and clock.sleeps == []


async def test_other_exceptions_propagate_without_retry() -> None:
    with pytest.raises(KeyError):
        await run([KeyError("bug"), Resp(200)])


# -- budget ----------------------------------------------------------------------------------


def test_budget_acquire_release_and_refill() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, transport_error_cost=10)
    assert budget.available == 20
    assert budget.acquire(10) and budget.acquire(10)
    assert not budget.acquire(5)
    budget.record_success(0)  # plain success refills one token
    assert budget.available == 1
    budget.record_success(15)  # a success after retries refunds what they took
    assert budget.available == 16
    budget.release(100)
    assert budget.available == 20  # never above capacity


async def test_budget_exhaustion_stops_retries_across_calls() -> None:
    policy = RetryPolicy(budget=RetryBudget(capacity=20), rng=random.Random(1))
    # first call: 4 retries of 503 cost 4 x 5 = 20 tokens, then gives up at max attempts
    result, script, _ = await run([Resp(503)] * 5, policy=policy)
    assert script.calls == 5 and policy.budget is not None and policy.budget.available == 0
    # second call: no budget left, fails fast
    result, script, clock = await run([Resp(503), Resp(200)], policy=policy)
    assert result.status == 503 and script.calls == 1 and clock.sleeps == []
    # a success refills one token at a time; 5 successes pay for one retry again
    for _ in range(5):
        await run([Resp(200)], policy=policy)
    assert policy.budget.available == 5
    result, script, _ = await run([Resp(503), Resp(200)], policy=policy)
    assert result.status == 200 and script.calls == 2
    assert policy.budget.available == 5  # the success refunded its retry's cost


async def test_transport_errors_cost_more() -> None:
    policy = RetryPolicy(budget=RetryBudget(capacity=15), rng=random.Random(1))
    with pytest.raises(TransportError):
        await run([transport_error(processed=True)] * 5, policy=policy)
    assert policy.budget is not None and policy.budget.available == 5


async def test_budget_none_means_unbudgeted() -> None:
    policy = RetryPolicy(budget=None)
    result, script, _ = await run([Resp(503)] * 4 + [Resp(200)], policy=policy)
    assert result.status == 200 and script.calls == 5


# -- idempotency -----------------------------------------------------------------------------


def test_default_idempotency_by_method() -> None:
    assert all(is_idempotent_method(m) for m in ("GET", "head", "PUT", "DELETE", "OPTIONS"))
    assert not any(is_idempotent_method(m) for m in ("POST", "PATCH"))


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_post_not_retried_on_ambiguous_server_errors(status: int) -> None:
    result, script, clock = await run([Resp(status), Resp(200)], method="POST")
    assert result.status == status and script.calls == 1 and clock.sleeps == []


async def test_post_not_retried_after_post_write_disconnect() -> None:
    error = transport_error(processed=True)
    with pytest.raises(TransportError) as info:
        await run([error, Resp(200)], method="POST")
    assert info.value is error


@pytest.mark.parametrize("status", [429, 503])
async def test_post_retried_when_provably_not_processed(status: int) -> None:
    result, script, _ = await run([Resp(status), Resp(200)], method="POST")
    assert result.status == 200 and script.calls == 2


async def test_post_retried_after_pre_write_failure() -> None:
    result, script, _ = await run([transport_error(processed=False), Resp(200)], method="POST")
    assert result.status == 200 and script.calls == 2


@pytest.mark.parametrize(
    "outcome",
    [Resp(429), Resp(502), Resp(503), Resp(504)]
    + [transport_error(processed=p) for p in (True, False)],
    ids=["429", "502", "503", "504", "post-write", "pre-write"],
)
async def test_get_retried_on_all(outcome: Resp | TransportError) -> None:
    result, script, _ = await run([outcome, Resp(200)], method="GET")
    assert result.status == 200 and script.calls == 2


async def test_explicit_idempotent_overrides_method() -> None:
    # a POST the session declares idempotent is retried on 502 ...
    result, script, _ = await run([Resp(502), Resp(200)], method="POST", idempotent=True)
    assert result.status == 200 and script.calls == 2
    # ... and a GET declared non-idempotent is not
    result, script, _ = await run([Resp(502), Resp(200)], method="GET", idempotent=False)
    assert result.status == 502 and script.calls == 1


def test_is_safe_to_resend() -> None:
    def c(method: str, status: int | None = None, error: TransportError | None = None) -> Any:
        return RetryContext(
            "Op",
            method,
            is_idempotent_method(method),
            1,
            Resp(status) if status else None,
            error,
        )

    assert is_safe_to_resend(c("GET", 500))
    assert is_safe_to_resend(c("POST", 429)) and is_safe_to_resend(c("POST", 503))
    assert not is_safe_to_resend(c("POST", 502))
    assert is_safe_to_resend(c("POST", error=transport_error(processed=False)))
    assert not is_safe_to_resend(c("POST", error=transport_error(processed=True)))


# -- hook, limiter, logging ------------------------------------------------------------------


async def test_hook_gets_operation_attempt_status_error_and_wait() -> None:
    events: list[RetryEvent] = []
    error = transport_error(processed=False)
    await run(
        [Resp(429, {"Retry-After": "1"}), error, Resp(200)],
        method="POST",
        policy=RetryPolicy(rng=TopRandom()),
        events=events,
    )
    assert [(e.operation_id, e.method, e.attempt, e.max_attempts) for e in events] == [
        ("Op", "POST", 1, 5),
        ("Op", "POST", 2, 5),
    ]
    assert events[0].status == 429 and events[0].error is None
    assert events[0].wait == pytest.approx(1.25)
    assert events[1].status is None and events[1].error is error
    assert events[1].wait == pytest.approx(0.4)
    assert "transport error" in events[1].reason


async def test_hook_not_called_without_retries() -> None:
    events: list[RetryEvent] = []
    await run([Resp(200)], events=events)
    await run([Resp(502)], method="POST", events=events)
    assert events == []


async def test_limiter_acquired_once_per_attempt() -> None:
    limiter = CountingLimiter()
    _, script, _ = await run([Resp(503), Resp(429), Resp(200)], limiter=limiter)
    assert script.calls == 3 and limiter.calls == 3


async def test_retries_are_logged_without_headers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tower_async.retries")
    headers = {"Retry-After": "0", "Authorization": f"Bearer {TOKEN}"}
    await run([Resp(429, headers), Resp(502, headers), Resp(502, headers)], method="POST")
    records = [r for r in caplog.records if r.name == "tower_async.retries"]
    assert records
    text = "\n".join(r.getMessage() for r in records)
    assert "Op" in text and "HTTP 429" in text and "attempt 1/5" in text
    assert "not retrying" in text  # the POST 502 give-up
    assert TOKEN not in text and "Authorization" not in text


# -- cancellation ----------------------------------------------------------------------------


async def test_cancel_during_backoff_sleep_propagates_and_refunds() -> None:
    clock = BlockingClock()
    policy = RetryPolicy(budget=RetryBudget(capacity=50))
    script = Script([Resp(503), Resp(200)])
    task = asyncio.create_task(
        send_with_retries(
            script,
            operation_id="Op",
            method="GET",
            idempotent=True,
            limiter=None,
            policy=policy,
            clock=clock,
        )
    )
    await asyncio.wait_for(clock.sleeping.wait(), timeout=5)
    assert policy.budget is not None and policy.budget.available == 45
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.calls == 1
    assert policy.budget.available == 50  # the retry never happened


async def test_cancel_during_limiter_wait_propagates() -> None:
    acquiring = asyncio.Event()

    class BlockedLimiter:
        async def acquire(self) -> None:
            acquiring.set()
            await asyncio.get_running_loop().create_future()

    script = Script([Resp(200)])
    task = asyncio.create_task(
        send_with_retries(
            script,
            operation_id="Op",
            method="GET",
            idempotent=True,
            limiter=BlockedLimiter(),
            policy=RetryPolicy(),
            clock=FakeClock(),
        )
    )
    await asyncio.wait_for(acquiring.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.calls == 0


async def test_system_clock() -> None:
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before


# -- 429s have their own count ------------------------------------------------------------------


async def test_429s_do_not_use_up_max_attempts() -> None:
    # seven 429s then two 503s then success: 3 non-throttled attempts of the 5 allowed
    script_ = [Resp(429, {"Retry-After": "0"})] * 7 + [Resp(503), Resp(503), Resp(200)]
    result, script, clock = await run(script_)
    assert result.status == 200 and script.calls == 10 and len(clock.sleeps) == 9
    # ... but 503s still stop at max_attempts, however many 429s came between them
    mixed = [Resp(429, {"Retry-After": "0"}), Resp(503)] * 5 + [Resp(200)]
    result, script, _ = await run(mixed)
    assert result.status == 503 and script.calls == 10


async def test_throttled_retries_are_capped() -> None:
    policy = RetryPolicy(throttle=ThrottlePolicy(max_retries=3))
    result, script, _ = await run([Resp(429, {"Retry-After": "0"})] * 5, policy=policy)
    assert result.status == 429 and script.calls == 4
    result, script, _ = await run([Resp(429), Resp(200)], policy=RetryPolicy(max_attempts=1))
    assert result.status == 429 and script.calls == 1


# -- hostile Retry-After values and the call's deadline (issue 11) ------------------------------


def test_retry_after_http_date_is_relative_to_the_wall_clock() -> None:
    now = 1_445_412_400.0  # Wed, 21 Oct 2015 07:26:40 GMT
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=now) == 80
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:20:00 GMT"}, now=now) == 0


@pytest.mark.parametrize(
    "value", ["abc", "-5", "nan", "inf", "-inf", "1e999", "", "Wed, 99 Foo 2015", "9" * 500]
)
def test_unusable_retry_after_values_give_no_hint(value: str) -> None:
    assert parse_retry_after({"Retry-After": value}) is None


@pytest.mark.parametrize("value", ["abc", "-5", "nan", "inf"])
async def test_429_with_garbage_retry_after_waits_briefly_and_counts(value: str) -> None:
    result, script, clock = await run([Resp(429, {"Retry-After": value})] * 60)
    assert result.status == 429
    assert script.calls == 5  # counted towards max_attempts, not the 50 paced retries
    assert all(0.25 <= s <= 0.5 for s in clock.sleeps)  # the floor plus jitter, each time
    assert sum(clock.sleeps) <= 2.0


async def test_503_retry_after_above_the_cap_gives_up() -> None:
    result, script, clock = await run([Resp(503, {"Retry-After": "3600"}), Resp(200)])
    assert result.status == 503 and script.calls == 1 and clock.sleeps == []


async def test_no_retry_sleep_extends_past_the_deadline() -> None:
    clock = FakeClock()
    script = Script([Resp(503, {"Retry-After": "59"})] * 10)
    result = await send_with_retries(
        script,
        operation_id="Op",
        method="GET",
        idempotent=True,
        limiter=None,
        policy=RetryPolicy(rng=BottomRandom()),
        clock=clock,
        deadline=130.0,
    )
    assert result.status == 503
    assert clock.sleeps == [59.0, 59.0]  # a third wait would end at 177 s > 130 s
    assert clock.now - 100.0 <= 130.0


async def test_deadline_gives_up_with_the_last_transport_error() -> None:
    clock = FakeClock()
    error = transport_error(processed=False)
    script = Script([error] * 10)
    with pytest.raises(TransportError) as info:
        await send_with_retries(
            script,
            operation_id="Op",
            method="GET",
            idempotent=True,
            limiter=None,
            policy=RetryPolicy(rng=TopRandom(), budget=None, max_attempts=10),
            clock=clock,
            deadline=1.0,
        )
    assert info.value is error
    assert sum(clock.sleeps) <= 1.0 and script.calls <= 4


async def test_a_session_closed_error_is_not_retried() -> None:
    from tower_async.errors import SessionClosed

    closed = SessionClosed("Op", "GET", "http://h/x", "closed", may_have_been_processed=False)
    with pytest.raises(SessionClosed):
        await run([closed, Resp(200)])
