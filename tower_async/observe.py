"""Seeing what the client does: hooks, the redacted request log, raw results, tracing.

Everything here is per call and only exists when asked for.  ``Tower`` keeps one
:class:`Observability` (the hooks, the tracer); for each call it asks :meth:`begin`
for a :class:`CallObserver`, which is ``None`` unless a hook is set, tracing is on,
the ``tower_async.http`` logger is enabled for DEBUG (checked once per call), or the
call is a ``.raw()`` one.  With none of those the call path is the plain one.

Per attempt the observer hears ``on_attempt(attempt, waited)`` from the retry loop
(after the rate-limit bucket, before the request) and ``sent(...)`` from the session
(after the transport), and per retry ``on_retry(event)``:

* hooks: ``on_request(RequestEvent)`` and ``on_response(ResponseEvent)``, small frozen
  records (operation, method, URL template, attempt, status, elapsed, bytes, waited) -
  the place to hang metrics on;
* the log: one DEBUG line per attempt on ``tower_async.http``, with the URL's query
  values masked for parameters the document marks sensitive (``format: password``,
  ``writeOnly``, ``x-sensitive``) or whose name looks like a secret; never a header or
  a body;
* tracing (``tower_async.tracing``, imported only when ``Tower(tracing=True)``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from .errors import ApiError, TowerError

if TYPE_CHECKING:
    from .operations import Operation
    from .retries import RetryEvent
    from .sansio import RawResponse, Request

__all__ = [
    "CallObserver",
    "Observability",
    "RawResult",
    "RequestEvent",
    "ResponseEvent",
    "bulk_span",
    "redact_url",
    "sensitive_parameters",
]

http_log = logging.getLogger("tower_async.http")
MASK = "***"
# query parameter names that look like they carry a secret (a page token does not)
SECRET_NAME = re.compile(r"(?<!page)token|passw|secret|key|auth|credential", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """Passed to ``on_request`` just before an attempt is sent."""

    operation_id: str
    method: str
    url_template: str  # the document's path, e.g. /workflow/{workflowId}
    attempt: int  # 1-based
    waited: float  # seconds this attempt waited for the rate-limit bucket


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """Passed to ``on_response`` after every attempt, answered or failed."""

    operation_id: str
    method: str
    url_template: str
    attempt: int
    status: int | None  # None when the exchange failed (see ``error``)
    elapsed: float  # seconds from sending to the response (body read unless streamed)
    bytes: int | None  # body size (Content-Length of a streamed body, when known)
    waited: float
    error: str | None = None  # for a failed exchange: ConnectError, Timeout, CancelledError...


@dataclass(frozen=True, slots=True)
class RawResult:
    """What ``await tw.some_operation.raw(...)`` returns: the validated data and the rest.

    ``url`` has sensitive query values masked; ``elapsed`` covers every attempt and wait;
    ``attempts`` counts the requests sent (1 without retries).
    """

    status: int
    headers: Mapping[str, str]
    data: Any
    elapsed: float
    attempts: int
    url: str


class Tracer(Protocol):
    """What ``tower_async.tracing`` provides (so this module never imports it)."""

    def start(self, op: Operation, request: Request) -> Any: ...

    def attempt_failed(self, span: Any, event: RetryEvent) -> None: ...

    def finish(
        self, span: Any, status: int | None, attempts: int, waited: float, error: Any
    ) -> None: ...


_SENSITIVE: dict[int, tuple[Operation, frozenset[str]]] = {}


def sensitive_parameters(op: Operation) -> frozenset[str]:
    """Query parameter names (as sent) of ``op`` whose values are masked (memoised)."""
    hit = _SENSITIVE.get(id(op))
    if hit is not None and hit[0] is op:
        return hit[1]
    names = set()
    for p in op.parameters:
        schema = p.schema
        if (
            schema.get("format") == "password"
            or schema.get("writeOnly") is True
            or schema.get("x-sensitive") is True
            or SECRET_NAME.search(p.name)
        ):
            names.add(p.name)
    found = frozenset(names)
    _SENSITIVE[id(op)] = (op, found)
    return found


def redact_url(url: str, sensitive: frozenset[str] = frozenset()) -> str:
    """``url`` with the values of sensitive (or secret-looking) query parameters masked."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        plain = unquote(name)
        if eq and (plain in sensitive or SECRET_NAME.search(plain)):
            pair = f"{name}={MASK}"
        pairs.append(pair)
    return f"{base}?{'&'.join(pairs)}"


def _size(raw: RawResponse) -> int | None:
    if raw.stream is None:
        return len(raw.body)
    length = raw.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


class CallObserver:
    """The per-call state: attempts, waits, the span; fans each event out."""

    __slots__ = (
        "_log",
        "_owner",
        "_span",
        "attempts",
        "elapsed",
        "op",
        "request",
        "started",
        "waited",
        "waited_total",
    )

    def __init__(self, owner: Observability, op: Operation, request: Request, log: bool) -> None:
        self._owner = owner
        self._log = log
        self.op = op
        self.request = request
        self.attempts = 0
        self.waited = 0.0  # this attempt's bucket wait
        self.waited_total = 0.0
        self.elapsed = 0.0
        self.started = time.perf_counter()
        tracer = owner.tracer
        self._span = tracer.start(op, request) if tracer is not None else None

    # -- from the retry loop and the session -------------------------------------------------

    def on_attempt(self, attempt: int, waited: float) -> None:
        self.attempts = attempt
        self.waited = waited
        self.waited_total += waited
        hook = self._owner.on_request
        if hook is not None:
            op = self.op
            hook(RequestEvent(op.operation_id, op.method, op.path, attempt, waited))

    def sent(self, raw: RawResponse | None, error: BaseException | None, elapsed: float) -> None:
        status = raw.status if raw is not None else None
        size = _size(raw) if raw is not None else None
        kind = type(error).__name__ if error is not None else None
        if self._log:
            self._log_line(status, size, elapsed, kind)
        hook = self._owner.on_response
        if hook is not None:
            op = self.op
            hook(
                ResponseEvent(
                    op.operation_id,
                    op.method,
                    op.path,
                    self.attempts,
                    status,
                    elapsed,
                    size,
                    self.waited,
                    kind,
                )
            )

    def on_retry(self, event: RetryEvent) -> None:
        if self._span is not None:
            tracer = self._owner.tracer
            assert tracer is not None
            tracer.attempt_failed(self._span, event)
        user = self._owner.on_retry
        if user is not None:
            user(event)

    def wrap(
        self, send: Callable[[], Awaitable[RawResponse]]
    ) -> Callable[[], Awaitable[RawResponse]]:
        """``send`` timed, each outcome reported to :meth:`sent`."""

        async def observed() -> RawResponse:
            started = time.perf_counter()
            try:
                raw = await send()
            except BaseException as exc:  # a TransportError, or cancelled while in flight
                self.sent(None, exc, time.perf_counter() - started)
                raise
            self.sent(raw, None, time.perf_counter() - started)
            return raw

        return observed

    def finish(self, raw: RawResponse | None, error: BaseException | None, keep: bool) -> None:
        """The call is over (``error`` is what it raises, if anything).  ``keep``: a
        ``.raw()`` call, whose API error gets the :class:`RawResult` as ``response``."""
        self.elapsed = time.perf_counter() - self.started
        status = raw.status if raw is not None else None
        if self._span is not None:
            tracer = self._owner.tracer
            assert tracer is not None
            tracer.finish(self._span, status, self.attempts, self.waited_total, error)
        if keep and raw is not None and isinstance(error, ApiError):
            error.response = self.result(raw, error.body)

    def result(self, raw: RawResponse, data: Any) -> RawResult:
        url = redact_url(self.request.url, sensitive_parameters(self.op))
        return RawResult(raw.status, raw.headers, data, self.elapsed, self.attempts, url)

    def _log_line(
        self, status: int | None, size: int | None, elapsed: float, kind: str | None
    ) -> None:
        op = self.op
        http_log.debug(
            "%s %s %s -> %s, %s bytes, %.1f ms, waited %.1f ms for the bucket, attempt %d",
            op.operation_id,
            op.method,
            redact_url(self.request.url, sensitive_parameters(op)),
            status if status is not None else kind,
            size if size is not None else "?",
            elapsed * 1000.0,
            self.waited * 1000.0,
            self.attempts,
        )


class Observability:
    """A session's hooks and tracer; :meth:`begin` makes the observer of one call."""

    __slots__ = ("always", "hooks", "on_request", "on_response", "on_retry", "tracer")

    def __init__(
        self,
        *,
        on_request: Callable[[RequestEvent], None] | None = None,
        on_response: Callable[[ResponseEvent], None] | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        tracing: bool = False,
        endpoint: str = "",
    ) -> None:
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        self.tracer: Tracer | None = None
        if tracing:
            try:
                from .tracing import OtelTracer  # imports opentelemetry, only now
            except ImportError as exc:
                raise TowerError(
                    "tracing=True needs OpenTelemetry: pip install 'tower-async[otel]'"
                ) from exc
            self.tracer = OtelTracer(endpoint)
        # something needs an observer on every call, whatever the log level
        self.hooks = bool(on_request or on_response)
        self.always = self.hooks or self.tracer is not None

    def hooked(self) -> bool:
        """Whether a hook is set or the request log is on (tracing aside): then every
        attempt of a call is reported, which only the general call path does."""
        return self.hooks or http_log.isEnabledFor(logging.DEBUG)

    def begin(self, op: Operation, request: Request, force: bool = False) -> CallObserver | None:
        """The observer for one call, or None when nothing would look at it."""
        log = http_log.isEnabledFor(logging.DEBUG)
        if not (self.always or log or force):
            return None
        return CallObserver(self, op, request, log)


class _NoBulkSpan:
    def item(self, outcome: Any) -> None:
        pass

    def activate(self) -> AbstractContextManager[None]:
        return nullcontext()


def bulk_span(tw: Any, workers: int, total: int | None) -> AbstractContextManager[Any]:
    """The span of one bulk launch when ``tw`` traces, else a no-op; the object it gives
    has ``item(outcome)`` (one event per item) and ``activate()`` (a context manager making
    the span current in the task that starts the workers)::

        with bulk_span(sessions[0], workers, total) as span:
            ...
            span.item(outcome)
    """
    observability = getattr(tw, "_observe", None)
    if observability is None or observability.tracer is None:
        return nullcontext(_NoBulkSpan())
    from .tracing import bulk_span as otel_bulk_span

    return otel_bulk_span(workers, total)
