"""Seeing what the client does (issue 18): the redacted request log, the on_request /
on_response hooks (a Prometheus-style counter built on them) and raw responses, against
the fake Platform and the tests' tiny server over loopback HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tower_async import (
    NotFound,
    RawResult,
    RequestEvent,
    ResponseEvent,
    ResponseValidationError,
    Tower,
    TowerError,
    TransportError,
)
from tower_async import observe as observe_module
from tower_async.observe import redact_url
from tower_async.retries import RetryPolicy
from tower_async.testing import FakePlatform

from .conftest import session_on
from .tiny_server import TINY_SPEC, TOKEN, Tiny, tiny_server

HTTP_LOG = "tower_async.http"


@pytest.fixture
def http_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=HTTP_LOG)
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == HTTP_LOG]


# -- the request log -------------------------------------------------------------------------


async def test_one_line_per_attempt_without_token_or_body(
    tw: Tower, fake: FakePlatform, http_log: pytest.LogCaptureFixture
) -> None:
    ws = tw.workspace_id
    assert ws is not None
    body = fake.launch_body(ws, "run-name-that-must-not-be-logged")
    fake.faults.burst("CreateWorkflowLaunch", status=503, count=1)  # 503: safe to re-send
    http_log.clear()
    await tw.create_workflow_launch(body=body)
    got = lines(http_log)
    assert len(got) == 2, got
    first, second = got
    assert first.startswith(f"CreateWorkflowLaunch POST {fake.url}/workflow/launch?workspaceId=")
    assert "-> 503" in first and first.endswith("attempt 1")
    assert "-> 200" in second and second.endswith("attempt 2")
    assert " bytes, " in second and " ms, waited " in second
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in http_log.records)
    assert fake.token not in text and "Bearer" not in text
    assert "run-name-that-must-not-be-logged" not in text
    assert body["launch"]["workDir"] not in text


async def test_a_failed_exchange_is_logged_with_its_error(
    tw: Tower, fake: FakePlatform, http_log: pytest.LogCaptureFixture
) -> None:
    fake.faults.add("ListWorkflows", "drop_before", count=1)
    tw._retry = RetryPolicy(max_attempts=1)
    http_log.clear()
    with pytest.raises(TransportError):
        await tw.list_workflows(max=1)
    (line,) = lines(http_log)
    assert "-> TransportError, ? bytes" in line and line.endswith("attempt 1")


def sensitive_spec() -> dict[str, Any]:
    """The tiny API with two secret query parameters on listItems."""
    document = yaml.safe_load(TINY_SPEC.read_text())
    params = document["paths"]["/items"]["get"]["parameters"]
    params.append(
        {"name": "pin", "in": "query", "schema": {"type": "string", "format": "password"}}
    )
    params.append({"name": "apiKey", "in": "query", "schema": {"type": "string"}})
    return dict(document)


@pytest.fixture
async def tiny() -> AsyncIterator[Tiny]:
    async with tiny_server() as server:
        yield server


async def test_sensitive_query_values_are_masked(
    tiny: Tiny, tmp_path: Path, http_log: pytest.LogCaptureFixture
) -> None:
    async with Tower(
        spec=sensitive_spec(), token=TOKEN, endpoint=tiny.url, cache_dir=tmp_path
    ) as tw:
        http_log.clear()
        result = await tw.list_items.raw(pin="4711-secret", api_key="k-9-secret", max=3)
    (line,) = lines(http_log)
    assert f"{tiny.url}/items?" in line and "max=3" in line
    assert "pin=***" in line and "apiKey=***" in line
    for shown in (line, result.url):
        assert "4711-secret" not in shown and "k-9-secret" not in shown and TOKEN not in shown
    assert {("pin", "4711-secret"), ("apiKey", "k-9-secret")} <= set(tiny.seen[-1].query)


async def test_an_error_message_masks_them_too(tiny: Tiny, tmp_path: Path) -> None:
    tiny.fail_next.append(404)
    async with Tower(
        spec=sensitive_spec(), token=TOKEN, endpoint=tiny.url, cache_dir=tmp_path
    ) as tw:
        with pytest.raises(NotFound) as info:
            await tw.list_items(pin="4711-secret", max=3)
    err = info.value
    assert "4711-secret" not in str(err) and "4711-secret" not in err.url
    assert "pin=***" in str(err) and err.url == f"{tiny.url}/items?max=3&pin=***"


def test_redact_url_masks_names_that_look_secret() -> None:
    url = "https://h/x?nextPageToken=p1&accessToken=zz&api_key=1&search=a%3Db&pin=9&ws=3"
    assert redact_url(url, frozenset({"pin"})) == (
        "https://h/x?nextPageToken=p1&accessToken=***&api_key=***&search=a%3Db&pin=***&ws=3"
    )
    assert redact_url("https://h/x") == "https://h/x"


async def test_no_observer_when_nothing_looks(
    tw: Tower, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[object] = []
    original = observe_module.CallObserver.__init__

    def counting(self: Any, *args: Any) -> None:
        made.append(self)
        original(self, *args)

    monkeypatch.setattr(observe_module.CallObserver, "__init__", counting)
    caplog.set_level(logging.INFO, logger=HTTP_LOG)
    await tw.list_workflows(max=1)
    assert made == []  # the plain call path: no per-call object at all
    caplog.set_level(logging.DEBUG, logger=HTTP_LOG)
    await tw.list_workflows(max=1)
    assert len(made) == 1


# -- hooks -----------------------------------------------------------------------------------


class RequestsTotal:
    """What a Prometheus client's Counter/Histogram would hold, built on the two hooks:
    ``tower_requests_total{operation, status}`` and the summed latency per operation."""

    def __init__(self) -> None:
        self.total: Counter[tuple[str, str]] = Counter()
        self.seconds: dict[str, float] = {}
        self.in_flight = 0
        self.requests: list[RequestEvent] = []

    def on_request(self, event: RequestEvent) -> None:
        self.in_flight += 1
        self.requests.append(event)

    def on_response(self, event: ResponseEvent) -> None:
        self.in_flight -= 1
        status = str(event.status) if event.status is not None else (event.error or "?")
        self.total[(event.operation_id, status)] += 1
        self.seconds[event.operation_id] = self.seconds.get(event.operation_id, 0.0) + event.elapsed


async def test_a_prometheus_style_counter_on_the_hooks(fake: FakePlatform, tmp_path: Path) -> None:
    metrics = RequestsTotal()
    hooks = {"on_request": metrics.on_request, "on_response": metrics.on_response}
    async with session_on(fake, tmp_path, **hooks) as tw:
        fake.faults.burst("ListWorkflows", status=503, count=2)
        await tw.list_workflows(max=1)
        with pytest.raises(NotFound):
            await tw.describe_workflow(workflow_id="nope0000000000")
        fake.faults.add("ListWorkflows", "drop_before", count=1)
        await tw.list_workflows(max=1)  # a dropped connection, then a retry
    assert metrics.total[("ListWorkflows", "503")] == 2
    assert metrics.total[("ListWorkflows", "200")] == 2
    assert metrics.total[("ListWorkflows", "TransportError")] == 1
    assert metrics.total[("DescribeWorkflow", "404")] == 1
    assert metrics.in_flight == 0
    assert metrics.seconds["ListWorkflows"] > 0
    listing = [e for e in metrics.requests if e.operation_id == "ListWorkflows"]
    assert [e.attempt for e in listing] == [1, 2, 3, 1, 2]
    assert {(e.method, e.url_template) for e in listing} == {("GET", "/workflow")}
    describe = next(e for e in metrics.requests if e.operation_id == "DescribeWorkflow")
    assert describe.url_template == "/workflow/{workflowId}"  # a template: no ids


class SlowBucket:
    """A limiter that makes every call wait 50 ms."""

    async def acquire(self) -> None:
        await asyncio.sleep(0.05)


async def test_the_bucket_wait_is_measured(
    fake: FakePlatform, tmp_path: Path, http_log: pytest.LogCaptureFixture
) -> None:
    responses: list[ResponseEvent] = []
    ws = fake.workspace_id("my-org", "production")
    bucket = SlowBucket()
    async with session_on(
        fake, tmp_path, workspace=ws, limiter=bucket, on_response=responses.append
    ) as tw:
        http_log.clear()
        await tw.list_workflows(max=1)
    (event,) = responses
    assert 0.045 <= event.waited < 5
    assert event.bytes is not None and event.bytes > 0 and event.status == 200
    (line,) = lines(http_log)
    waited_ms = float(line.split("waited ")[1].split(" ms")[0])
    assert waited_ms >= 45


# -- raw responses ---------------------------------------------------------------------------


async def test_raw_json_call(tw: Tower, fake: FakePlatform) -> None:
    fake.faults.burst("ListWorkflows", status=503, count=2)
    result = await tw.list_workflows.raw(max=5)
    assert isinstance(result, RawResult)
    assert result.status == 200 and result.attempts == 3
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.data == await tw.list_workflows(max=5)
    assert result.url == f"{fake.url}/workflow?workspaceId={tw.workspace_id}&max=5"
    assert result.elapsed > 0
    assert fake.token not in repr(result)


async def test_raw_204_and_error_calls(tw: Tower, fake: FakePlatform) -> None:
    ws = tw.workspace_id
    assert ws is not None
    wid = (await tw.create_workflow_launch(body=fake.launch_body(ws, "r")))["workflowId"]
    await tw.cancel_workflow(workflow_id=wid)
    gone = await tw.delete_workflow.raw(workflow_id=wid)
    assert (gone.status, gone.data, gone.attempts) == (204, None, 1)
    with pytest.raises(NotFound) as info:
        await tw.describe_workflow.raw(workflow_id=wid)
    response = info.value.response
    assert isinstance(response, RawResult)
    assert response.status == 404 and response.attempts == 1
    assert response.data == info.value.body
    assert response.url == f"{fake.url}/workflow/{wid}?workspaceId={ws}"


async def test_raw_keeps_validation(tw: Tower, fake: FakePlatform) -> None:
    ws = tw.workspace_id
    assert ws is not None
    await tw.create_workflow_launch(body=fake.launch_body(ws, "r"))
    fake.faults.add("ListWorkflows", "drift", drift=("enum",), count=1)
    with pytest.raises(ResponseValidationError, match="ListWorkflows"):
        await tw.list_workflows.raw(max=5, validation="strict")


def test_tracing_without_opentelemetry_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tower_async.tracing", raising=False)
    with pytest.raises(TowerError, match=r"pip install 'tower-async\[otel\]'"):
        Tower(token="t", tracing=True)


async def test_a_cancelled_attempt_still_reaches_on_response(
    fake: FakePlatform, tmp_path: Path
) -> None:
    metrics = RequestsTotal()
    sent = asyncio.Event()

    def on_request(event: RequestEvent) -> None:
        metrics.on_request(event)
        sent.set()

    hooks = {"on_request": on_request, "on_response": metrics.on_response}
    async with session_on(fake, tmp_path, **hooks) as tw:
        fake.faults.add("ListWorkflows", "latency", delay=1.0, count=1)
        call = asyncio.create_task(tw.list_workflows(max=1))
        await asyncio.wait_for(sent.wait(), 10)
        await asyncio.sleep(0.05)  # the request is on the wire
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert metrics.in_flight == 0
    assert metrics.total[("ListWorkflows", "CancelledError")] == 1
