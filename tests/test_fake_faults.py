"""Fault injection: every kind, bursts, deterministic probabilities."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from tower_async.testing import FakePlatform, FaultInjector, FaultSpec


async def test_status_burst_then_recovery(fake_platform: FakePlatform) -> None:
    fake_platform.faults.burst("ListWorkflows", status=503, count=3)
    fake_platform.faults.burst("/orgs", status=502, count=1)
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        statuses = []
        for _ in range(5):
            async with s.get(f"{fake_platform.url}/workflow") as resp:
                statuses.append(resp.status)
                if resp.status == 503:
                    assert "message" in await resp.json()
        assert statuses == [503, 503, 503, 200, 200]
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            assert resp.status == 200  # other routes unaffected
        codes = []
        for _ in range(2):
            async with s.get(f"{fake_platform.url}/orgs") as resp:
                codes.append(resp.status)
        assert codes == [502, 200]
    assert fake_platform.faults.rules == []  # exhausted rules are dropped
    assert fake_platform.faults.count_fired("status") == 4


async def test_drop_before_processing_changes_nothing(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    fake_platform.faults.add("CreateWorkflowLaunch", "drop_before", count=1)
    url = f"{fake_platform.url}/workflow/launch?workspaceId={ws}"
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with s.post(url, json=fake_platform.launch_body(ws)) as resp:
                await resp.read()
        assert fake_platform.state.launches == []
        async with s.post(url, json=fake_platform.launch_body(ws)) as resp:
            assert resp.status == 200
    assert len(fake_platform.state.launches) == 1


async def test_drop_after_processing_keeps_the_state_change(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    fake_platform.faults.add("CreateWorkflowLaunch", "drop_after")
    url = f"{fake_platform.url}/workflow/launch?workspaceId={ws}"
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with s.post(url, json=fake_platform.launch_body(ws, "once")) as resp:
                await resp.read()
    records = fake_platform.state.launches_named("once")
    assert len(records) == 1
    assert fake_platform.state.launch_counts()[records[0].fingerprint] == 1
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        listing = f"{fake_platform.url}/workflow?workspaceId={ws}&search=once"
        async with s.get(listing) as resp:
            runs = (await resp.json())["workflows"]
    assert [r["workflow"]["id"] for r in runs] == [records[0].workflow_id]


async def test_truncated_and_invalid_json_bodies(fake_platform: FakePlatform) -> None:
    fake_platform.faults.add("ListOrganizations", "truncate", count=1)
    fake_platform.faults.add("UserInfo", "invalid_json", count=1)
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with s.get(f"{fake_platform.url}/orgs") as resp:
                assert resp.status == 200
                await resp.read()
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            assert resp.status == 200
            raw = await resp.read()
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            assert orjson.loads(await resp.read())["user"]["userName"] == "fake-user"


async def test_latency_and_slow_body_deliver_the_normal_payload(
    fake_platform: FakePlatform,
) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            expected = await resp.read()
        fake_platform.faults.add("UserInfo", "latency", delay=0.2, count=1)
        t0 = time.perf_counter()
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            assert await resp.read() == expected
        assert time.perf_counter() - t0 >= 0.2
        chunk = len(expected) // 4 + 1  # 4 chunks -> 3 pauses
        fake_platform.faults.add("UserInfo", "slow_body", delay=0.05, chunk=chunk, count=1)
        t0 = time.perf_counter()
        async with s.get(f"{fake_platform.url}/user-info") as resp:
            assert resp.headers["Content-Length"] == str(len(expected))
            assert await resp.read() == expected
        assert time.perf_counter() - t0 >= 0.15


async def test_spec_drift_payloads(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("community", "showcase")
    [wf_id] = fake_platform.state.add_workflows(ws, 1, status="SUCCEEDED")
    fake_platform.faults.add("ListComputeEnvs", "drift", drift=("enum", "extra", "nulls"))
    fake_platform.faults.add("ListWorkflowTasks", "drift", drift=("exit_string",))
    base = fake_platform.url
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        async with s.get(f"{base}/compute-envs?workspaceId={ws}") as resp:
            body = await resp.json()
        [ce] = body["computeEnvs"]
        assert ce["status"] == "DELETING"
        assert ce["undocumentedField"]["addedBy"] == "tower-async fake"
        assert "undocumentedField" in body
        assert "lastUsed" in ce and ce["lastUsed"] is None
        assert "region" in ce and ce["region"] is None
        async with s.get(f"{base}/workflow/{wf_id}/tasks?workspaceId={ws}") as resp:
            tasks = (await resp.json())["tasks"]
        assert tasks and {t["task"]["exit"] for t in tasks} == {"0"}
        assert all(t["task"]["exitStatus"] == 0 for t in tasks)


def test_probabilistic_faults_are_deterministic_per_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        inj = FaultInjector(seed=seed)
        inj.add("ListWorkflows", "status", probability=0.5)
        return [bool(inj.pick("ListWorkflows", "/workflow")) for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert 5 < sum(first) < 35
    assert first != pattern(8)


def test_route_matching_and_validation() -> None:
    spec = FaultSpec(route="/workflow/*/tasks", kind="latency")
    assert spec.matches("ListWorkflowTasks", "/workflow/abc/tasks")
    assert not spec.matches("ListWorkflows", "/workflow")
    assert FaultSpec(route="*", kind="drift").matches("Anything", "/x")
    with pytest.raises(ValueError):
        FaultSpec(route="*", kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaultSpec(route="*", kind="status", probability=1.5)
    with pytest.raises(ValueError):
        FaultSpec(route="*", kind="drift", drift=("colour",))


async def test_service_info_can_fault_but_the_document_never_does(
    fake_platform: FakePlatform,
) -> None:
    fake_platform.faults.add("*", "status", status=500)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake_platform.url}/service-info") as resp:
            assert resp.status == 500
        async with s.get(fake_platform.spec_url) as resp:
            assert resp.status == 200


async def _until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    for _ in range(int(limit / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def _launch(
    s: aiohttp.ClientSession, url: str, body: dict[str, Any], timeout: float | None = None
) -> dict[str, Any]:
    """POST a launch; a 200 answer's JSON (``timeout``: give up after that many seconds)."""
    extra = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
    async with s.post(url, json=body, **extra) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def test_latency_before_holds_the_request_unread(
    fake_platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_platform
    ws = fake.workspace_id("my-org", "production")
    url = f"{fake.url}/workflow/launch?workspaceId={ws}"
    slow = fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.5, count=2)
    assert slow.when == "before"
    async with aiohttp.ClientSession(headers=fake.headers()) as s:
        # a patient client: nothing happens during the delay, then the launch is processed
        task = asyncio.create_task(_launch(s, url, fake.launch_body(ws, "patient")))
        await _until(lambda: slow.fired == 1)
        assert fake.state.launches == [] and not task.done()
        answer = await task
        [record] = fake.state.launches_named("patient")
        assert answer["workflowId"] == record.workflow_id

        # a client that times out during the delay: its launch is never processed
        with pytest.raises(asyncio.TimeoutError):
            await _launch(s, url, fake.launch_body(ws, "impatient"), timeout=0.1)
        await _until(lambda: fake.disconnects == ["CreateWorkflowLaunch"])
    assert fake.state.launches_named("impatient") == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_latency_after_processes_first_then_delays_the_answer(
    fake_platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_platform
    ws = fake.workspace_id("my-org", "production")
    url = f"{fake.url}/workflow/launch?workspaceId={ws}"
    slow = fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.5, when="after", count=2)
    async with aiohttp.ClientSession(headers=fake.headers()) as s:
        # the launch is recorded while the answer is still on its way
        task = asyncio.create_task(_launch(s, url, fake.launch_body(ws, "patient")))
        await _until(lambda: len(fake.state.launches_named("patient")) == 1)
        assert not task.done()
        answer = await task
        [record] = fake.state.launches_named("patient")
        assert answer["workflowId"] == record.workflow_id

        # a client that times out: it gets no answer, yet its launch happened
        with pytest.raises(asyncio.TimeoutError):
            await _launch(s, url, fake.launch_body(ws, "impatient"), timeout=0.1)
        await _until(lambda: fake.disconnects == ["CreateWorkflowLaunch"])
    assert len(fake.state.launches_named("impatient")) == 1
    assert slow.fired == 2
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_latency_after_on_a_read_and_a_streamed_answer(fake_platform: FakePlatform) -> None:
    fake = fake_platform
    ws = fake.workspace_id("my-org", "production")
    [wf_id] = fake.state.add_workflows(ws, 1, status="SUCCEEDED")
    fake.faults.add("DescribeWorkflow", "latency", delay=0.2, when="after", count=1)
    fake.faults.add("DownloadWorkflowLog", "latency", delay=0.2, when="after", count=1)
    async with aiohttp.ClientSession(headers=fake.headers()) as s:
        t0 = time.perf_counter()
        async with s.get(f"{fake.url}/workflow/{wf_id}?workspaceId={ws}") as resp:
            assert (await resp.json())["workflow"]["id"] == wf_id
        assert time.perf_counter() - t0 >= 0.2
        t0 = time.perf_counter()
        url = f"{fake.url}/workflow/{wf_id}/download?workspaceId={ws}"
        async with s.get(url) as resp:
            await resp.content.readexactly(1)
            assert time.perf_counter() - t0 >= 0.2  # delayed before the first byte
            assert (await resp.read()).endswith(b"Execution complete -- Goodbye\n")


def test_latency_when_is_validated() -> None:
    with pytest.raises(ValueError, match="when"):
        FaultSpec(route="*", kind="latency", when="during")  # type: ignore[arg-type]
    assert FaultInjector().add("*", "latency", when="after").when == "after"
