"""OpenTelemetry spans for ``Tower(tracing=True)`` (issue 18), with the SDK's in-memory
exporter, against the fake Platform over loopback HTTP; and no opentelemetry import at
all when tracing is off (checked in a child process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the test extra installs opentelemetry-sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from tower_async import ConnectError, NotFound, Tower
from tower_async.observe import bulk_span
from tower_async.retries import RetryPolicy
from tower_async.testing import FakePlatform

from .conftest import session_on
from .tiny_server import TINY_SPEC

REPO = Path(__file__).resolve().parents[1]
_EXPORTER = InMemorySpanExporter()


def _install_provider() -> None:
    """The global provider can be set once per process: set it on first use, with ours."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


_install_provider()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
async def traced(fake: FakePlatform) -> AsyncIterator[Tower]:
    async with session_on(fake, tracing=True) as session:
        yield session


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def every_value(span: ReadableSpan) -> list[str]:
    values = [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        values.append(event.name)
        values += [str(v) for v in (event.attributes or {}).values()]
    values.append(str(span.status.description))
    return values


async def test_one_client_span_per_call_with_http_attributes(
    traced: Tower, fake: FakePlatform, spans: InMemorySpanExporter
) -> None:
    await traced.list_workflows(max=3)
    (span,) = named(spans, "ListWorkflows")
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    port = int(fake.url.rsplit(":", 1)[1])
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.template"] == "/workflow"
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", port)
    assert attributes["http.response.status_code"] == 200
    assert attributes["tower.operation"] == "ListWorkflows"
    assert attributes["tower.workspace_id"] == traced.workspace_id
    wait = attributes["tower.ratelimit.wait_seconds"]
    assert isinstance(wait, float | int) and wait >= 0
    assert "http.request.resend_count" not in attributes and "error.type" not in attributes
    assert span.status.status_code is StatusCode.UNSET and span.events == ()


async def test_spans_nest_under_the_callers_span(
    traced: Tower, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("nightly-report") as parent:
        await traced.list_workflows(max=1)
        await traced.info()
    (user,) = named(spans, "nightly-report")
    children = named(spans, "ListWorkflows") + named(spans, "Info")
    assert len(children) == 2
    for child in children:
        assert child.parent is not None and child.parent.span_id == user.context.span_id
        assert child.context.trace_id == parent.get_span_context().trace_id
    # and our span is not left current after the call
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_the_bucket_wait_is_recorded_on_the_span(
    fake: FakePlatform, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """With a rate limit, a call that had to wait for the bucket says how long."""
    async with session_on(fake, tmp_path, tracing=True, rate_limit=100) as session:
        for _ in range(12):
            await session.list_workflows(max=1)
    waits: list[float] = []
    for span in named(spans, "ListWorkflows"):
        wait = (span.attributes or {})["tower.ratelimit.wait_seconds"]
        assert isinstance(wait, float) and wait >= 0
        waits.append(wait)
    assert len(waits) == 12
    assert max(waits) > 0  # 12 calls at 100/s: some waited for the bucket


async def test_retries_are_span_events(
    traced: Tower, fake: FakePlatform, spans: InMemorySpanExporter
) -> None:
    fake.faults.burst("ListWorkflows", status=503, count=2)
    await traced.list_workflows(max=1)
    (span,) = named(spans, "ListWorkflows")
    assert [e.name for e in span.events] == ["retry", "retry"]
    assert [(e.attributes or {})["http.response.status_code"] for e in span.events] == [503, 503]
    assert [(e.attributes or {})["tower.attempt"] for e in span.events] == [1, 2]
    attributes = span.attributes or {}
    assert attributes["http.request.resend_count"] == 2
    assert attributes["http.response.status_code"] == 200


async def test_failures_carry_the_error_type(
    traced: Tower, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        await traced.describe_workflow(workflow_id="nope0000000000")
    (span,) = named(spans, "DescribeWorkflow")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "404"
    assert (span.attributes or {})["http.response.status_code"] == 404

    async with Tower(
        spec=TINY_SPEC,
        token="t",
        endpoint="http://127.0.0.1:9",
        cache_dir=tmp_path,
        tracing=True,
        retry=RetryPolicy(max_attempts=1),
    ) as down:
        with pytest.raises(ConnectError):
            await down.list_items()
    (span,) = named(spans, "listItems")
    assert (span.attributes or {})["error.type"] == "tower_async.errors.ConnectError"
    assert "http.response.status_code" not in (span.attributes or {})


async def test_nothing_secret_in_any_span(
    traced: Tower, fake: FakePlatform, spans: InMemorySpanExporter
) -> None:
    ws = traced.workspace_id
    assert ws is not None
    body = fake.launch_body(ws, "secret-run-name-7f3a")
    fake.faults.burst("CreateWorkflowLaunch", status=503, count=1)
    launched = await traced.create_workflow_launch(body=body)
    with pytest.raises(NotFound):  # an error whose body holds a message
        await traced.describe_workflow(workflow_id="nope0000000000")
    finished = spans.get_finished_spans()
    assert {s.name for s in finished} >= {"CreateWorkflowLaunch", "DescribeWorkflow"}
    for span in finished:
        text = " ".join(every_value(span))
        assert fake.token not in text and "Bearer" not in text
        assert "secret-run-name-7f3a" not in text and body["launch"]["workDir"] not in text
        assert launched["workflowId"] not in text  # the response body neither
        assert "nope0000000000" not in text  # no concrete URL: the template only


async def test_bulk_span_with_one_event_per_item(
    traced: Tower, spans: InMemorySpanExporter
) -> None:
    class Outcome:
        def __init__(self, index: int, status: str, workflow_id: str | None) -> None:
            self.index, self.status, self.workflow_id = index, status, workflow_id

    with bulk_span(traced, 4, 2) as bulk:
        with bulk.activate():
            await traced.list_workflows(max=1)  # a launch stands in: nests under the bulk span
        bulk.item(Outcome(0, "launched", "w1"))
        bulk.item(Outcome(1, "failed", None))
    (span,) = named(spans, "bulk_launch")
    assert [(e.attributes or {})["tower.bulk.status"] for e in span.events] == [
        "launched",
        "failed",
    ]
    assert (span.attributes or {})["tower.bulk.total"] == 2
    (child,) = named(spans, "ListWorkflows")
    assert child.parent is not None and child.parent.span_id == span.context.span_id


async def test_bulk_span_is_a_no_op_without_tracing(tw: Tower, spans: InMemorySpanExporter) -> None:
    with bulk_span(tw, 1, None) as bulk, bulk.activate():
        bulk.item(object())
    assert spans.get_finished_spans() == ()


async def test_no_spans_without_tracing(tw: Tower, spans: InMemorySpanExporter) -> None:
    await tw.list_workflows(max=1)
    assert spans.get_finished_spans() == ()


def test_opentelemetry_is_not_imported_when_tracing_is_off(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        import tower_async
        from tower_async.testing import FakePlatform

        async def main() -> None:
            async with FakePlatform(rate_limit=None) as fake:
                async with tower_async.Tower(
                    token=fake.token, endpoint=fake.url, workspace="my-org/production",
                    cache_dir=sys.argv[1], on_response=lambda event: None,
                ) as tw:
                    await tw.list_workflows(max=1)
                    await tw.list_workflows.raw(max=1)

        asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        print("loaded:", loaded)
        sys.exit(1 if loaded else 0)
        """
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TOWER_ACCESS_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_bulk_launch_is_one_span_with_an_event_per_item(
    traced: Tower, spans: InMemorySpanExporter
) -> None:
    from tower_async.orchestration import LaunchSpec

    items = [LaunchSpec("nf-core/rnaseq", run_name=f"b{i}", params={"i": i}) for i in range(3)]
    outcomes = [o async for o in traced.bulk_launch(items, concurrency=2)]
    assert sorted(o.status for o in outcomes) == ["launched"] * 3
    (span,) = named(spans, "bulk_launch")
    events = [e.attributes or {} for e in span.events if e.name == "launch"]
    assert sorted(int(str(e["tower.bulk.index"])) for e in events) == [0, 1, 2]
    assert {e["tower.workflow_id"] for e in events} == {o.workflow_id for o in outcomes}
    launches = named(spans, "CreateWorkflowLaunch")
    assert len(launches) == 3
    assert all(s.parent is not None and s.parent.span_id == span.context.span_id for s in launches)
