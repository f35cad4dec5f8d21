"""OpenTelemetry spans for ``Tower(tracing=True)`` (extra ``tower-async[otel]``).

Imported only when tracing is switched on: without it, ``opentelemetry`` is never
imported.  Spans go to the globally configured tracer provider
(``opentelemetry.trace.set_tracer_provider``); with none configured they cost the API's
no-op spans.

One CLIENT span per operation call, named by its operationId, current while the call
runs (so spans of an instrumented aiohttp nest under it), child of whatever span is
current when the call starts.  Attributes (HTTP semantic conventions plus ``tower.*``):
``http.request.method``, ``url.template`` (the document's path, never the URL: no ids,
no query), ``server.address``, ``server.port``, ``http.response.status_code``,
``http.request.resend_count`` (when retried), ``error.type`` (the status code, or the
exception's type), ``tower.operation``, ``tower.workspace_id``,
``tower.ratelimit.wait_seconds``.  Each retry is a ``retry`` event.  No header, body,
query value or exception message is put in a span: the token and payloads cannot leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._version import __version__
from .errors import ApiError

if TYPE_CHECKING:
    from .operations import Operation
    from .retries import RetryEvent
    from .sansio import Request

__all__ = ["BulkSpan", "OtelTracer", "bulk_span", "error_type"]

_TRACER_NAME = "tower_async"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME, __version__)


def error_type(error: BaseException) -> str:
    """``error.type``: the status code of an API error, else the exception's type."""
    if isinstance(error, ApiError):
        return str(error.status)
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def _workspace_id(url: str) -> int | None:
    at = url.find("workspaceId=")
    if at < 0 or url[at - 1] not in "?&":
        return None
    value = url[at + len("workspaceId=") :].split("&", 1)[0]
    return int(value) if value.isdigit() else None


class OtelTracer:
    """Starts and ends the span of one call; see the module doc for what it records."""

    def __init__(self, endpoint: str) -> None:
        self._tracer = _tracer()
        parts = urlsplit(endpoint)
        self._host = parts.hostname or ""
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)

    def start(self, op: Operation, request: Request) -> Any:
        attributes: dict[str, Any] = {
            "tower.operation": op.operation_id,
            "http.request.method": op.method,
            "url.template": op.path,
            "server.address": self._host,
            "server.port": self._port,
        }
        workspace = _workspace_id(request.url)
        if workspace is not None:
            attributes["tower.workspace_id"] = workspace
        span = self._tracer.start_span(op.operation_id, kind=SpanKind.CLIENT, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def attempt_failed(self, handle: Any, event: RetryEvent) -> None:
        span = handle[0]
        attributes: dict[str, Any] = {
            "tower.attempt": event.attempt,
            "tower.retry.wait_seconds": event.wait,
        }
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        if event.error is not None:
            attributes["error.type"] = error_type(event.error)
        span.add_event("retry", attributes)

    def finish(
        self, handle: Any, status: int | None, attempts: int, waited: float, error: Any
    ) -> None:
        span, token = handle
        try:
            # one set_attributes call: the SDK takes its lock and cleans values per call
            attributes: dict[str, Any] = {"tower.ratelimit.wait_seconds": waited}
            if status is not None:
                attributes["http.response.status_code"] = status
            if attempts > 1:
                attributes["http.request.resend_count"] = attempts - 1
            if error is not None:
                kind = attributes["error.type"] = error_type(error)
                span.set_status(Status(StatusCode.ERROR, kind))
            span.set_attributes(attributes)
            span.end()
        finally:
            otel_context.detach(token)


class BulkSpan:
    """The span of one bulk launch: ``item(outcome)`` adds a per-item event."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def item(self, outcome: Any) -> None:
        attributes: dict[str, Any] = {
            "tower.bulk.index": int(getattr(outcome, "index", -1)),
            "tower.bulk.status": str(getattr(outcome, "status", "")),
        }
        workflow_id = getattr(outcome, "workflow_id", None)
        if workflow_id:
            attributes["tower.workflow_id"] = str(workflow_id)
        self.span.add_event("launch", attributes)

    @contextmanager
    def activate(self) -> Iterator[None]:
        """Make the bulk span current in this task (launch spans of tasks started here nest
        under it)."""
        token = otel_context.attach(trace.set_span_in_context(self.span))
        try:
            yield
        finally:
            otel_context.detach(token)


@contextmanager
def bulk_span(workers: int, total: int | None) -> Iterator[BulkSpan]:
    """A ``bulk_launch`` span (INTERNAL), ended when the block exits."""
    attributes: dict[str, Any] = {"tower.bulk.workers": workers}
    if total is not None:
        attributes["tower.bulk.total"] = total
    span = _tracer().start_span("bulk_launch", attributes=attributes)
    try:
        yield BulkSpan(span)
    except BaseException as exc:
        span.set_attribute("error.type", error_type(exc))
        span.set_status(Status(StatusCode.ERROR, error_type(exc)))
        raise
    finally:
        span.end()
