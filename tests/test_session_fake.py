"""The session against the fake Platform over loopback HTTP (issues 2 and 3).

Binds the fake's own document (automatic: /service-info, then the served document) and
the Platform's published 1.181.0 document, in strict validation mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tower_async import BadRequest, Forbidden, NotFound, RequestValidationError, Tower
from tower_async.testing import FakePlatform

from .conftest import spec_path


@pytest.fixture(params=["fake-document", "published-1.181.0"])
async def tw(
    request: pytest.FixtureRequest, fake_platform: FakePlatform, shared_cache_dir: Path
) -> AsyncIterator[Tower]:
    spec: Any = None if request.param == "fake-document" else spec_path("1.181.0")
    async with Tower(
        spec=spec,
        token=fake_platform.token,
        endpoint=fake_platform.url,
        workspace=fake_platform.workspace_id("my-org", "production"),
        cache_dir=shared_cache_dir,
        validation="strict",
        rate_limit=None,
    ) as session:
        yield session


async def test_launch_describe_cancel_delete(tw: Tower, fake_platform: FakePlatform) -> None:
    ws = tw.workspace_id
    assert ws is not None
    info = await tw.info()
    assert info["serviceInfo"]["apiVersion"] == fake_platform.api_version
    launched = await tw.create_workflow_launch(body=fake_platform.launch_body(ws, "r1"))
    wid = launched["workflowId"]
    assert [r.workflow_id for r in fake_platform.state.launches] == [wid]
    described = await tw.describe_workflow(workflow_id=wid)
    assert described["workflow"]["status"] == "SUBMITTED"
    fake_platform.advance(10)
    described = await tw.describe_workflow(workflow_id=wid)
    assert described["workflow"]["status"] == "RUNNING"
    assert await tw.cancel_workflow(workflow_id=wid) is None
    described = await tw.describe_workflow(workflow_id=wid)
    assert described["workflow"]["status"] == "CANCELLED"
    page = await tw.list_workflows(max=10)
    assert [w["workflow"]["id"] for w in page["workflows"]] == [wid]
    assert await tw.delete_workflow(workflow_id=wid) is None
    with pytest.raises(NotFound):
        await tw.describe_workflow(workflow_id=wid)


async def test_run_log_is_streamed(tw: Tower, fake_platform: FakePlatform) -> None:
    ws = tw.workspace_id
    assert ws is not None
    wid = (await tw.create_workflow_launch(body=fake_platform.launch_body(ws)))["workflowId"]
    fake_platform.advance(10_000)
    total = 0
    async with await tw.download_workflow_log(workflow_id=wid, file_name="nf.log") as log:
        async for chunk in log.iter_chunked(16384):
            total += len(chunk)
    assert total >= fake_platform.state.log_size // 2


async def test_platform_errors_become_api_errors(tw: Tower, fake_platform: FakePlatform) -> None:
    with pytest.raises(BadRequest, match=r"computeEnvId|workDir|pipeline") as info:
        await tw.create_workflow_launch(body={"launch": {"pipeline": "x"}})
    assert info.value.status == 400 and info.value.operation_id == "CreateWorkflowLaunch"
    with pytest.raises(NotFound):
        await tw.describe_workflow(workflow_id="doesNotExist")
    assert fake_platform.state.launches == []
    with pytest.raises(RequestValidationError, match="CreateWorkflowLaunch"):
        await tw.create_workflow_launch(body={"launch": {"pipeline": 42}})


async def test_missing_or_foreign_token_is_forbidden(
    fake_platform: FakePlatform, cache_dir: Path
) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    dev = fake_platform.workspace_id("my-org", "dev")
    scoped = fake_platform.add_token(workspaces=[dev])
    async with Tower(token="", endpoint=fake_platform.url, cache_dir=cache_dir) as anonymous:
        assert (await anonymous.info())["serviceInfo"]  # no token needed here
        with pytest.raises(Forbidden) as info:
            await anonymous.list_workflows(workspace_id=ws)
        assert info.value.message is None  # 403 without a body, as on the Platform
    async with Tower(token=scoped, endpoint=fake_platform.url, cache_dir=cache_dir) as tw:
        assert (await tw.list_workflows(workspace_id=dev))["workflows"] == []
        with pytest.raises(Forbidden):
            await tw.list_workflows(workspace_id=ws)


async def test_fan_out_helpers_are_reachable_from_the_session(
    fake_platform: FakePlatform, cache_dir: Path
) -> None:
    async with Tower(
        token=fake_platform.token,
        endpoint=fake_platform.url,
        workspace="my-org/production",  # resolved by name when the session opens
        cache_dir=cache_dir,
        rate_limit=None,
    ) as tw:
        assert tw.workspace_id == fake_platform.workspace_id("my-org", "production")
        pipeline = await tw.resolve_pipeline("nf-core/rnaseq")
        assert pipeline.name == "nf-core/rnaseq"
        wid = await tw.launch("nf-core/rnaseq", run_name="via-session", params={"x": 1})
        [record] = fake_platform.state.launches_named("via-session")
        assert record.workflow_id == wid
        fake_platform.advance(100_000)
        result = await tw.wait_for_run(wid, poll_interval=0.01)
        assert result.status in ("SUCCEEDED", "FAILED")


def test_no_session_attribute_shadows_an_operation() -> None:
    from tower_async.operations import bind_operations
    from tower_async.spec import SchemaCache, load_document

    public = {name for name in dir(Tower) if not name.startswith("_")}
    for version in ("1.85.0", "1.115.0", "1.181.0"):
        spec = load_document(spec_path(version), cache=SchemaCache(None), validate=False)
        clash = public & set(bind_operations(spec.document).python_names)
        assert not clash, f"{version}: Tower attributes hide operations {sorted(clash)}"


async def test_paging_is_visible_on_bound_operations(tw: Tower) -> None:
    from tower_async import PaginationError

    paging = tw.list_workflows.paging
    assert paging is not None
    assert tw.describe_workflow.paging is None
    with pytest.raises(PaginationError, match="DescribeWorkflow"):
        tw.describe_workflow.items(workflow_id="x")


def test_import_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tower_async\n"
        "heavy = [m for m in ('openapi_core', 'openapi_spec_validator', 'yaml', 'jsonschema',"
        " 'jsonschema_rs', 'tower_async.pagination', 'tower_async.orchestration',"
        " 'tower_async.testing') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def test_log_pages_validate_against_both_documents(
    tw: Tower, fake_platform: FakePlatform
) -> None:
    # the published document types the entries as an empty object (Iterator_String_);
    # the iterator-as-array patch makes the real array of lines valid in strict mode
    ws = tw.workspace_id
    assert ws is not None
    wid = (await tw.create_workflow_launch(body=fake_platform.launch_body(ws)))["workflowId"]
    fake_platform.advance(10_000)
    page = await tw.get_workflow_log(workflow_id=wid, max_length=4096)
    entries = page["log"]["entries"]
    assert isinstance(entries, list) and entries and all(isinstance(e, str) for e in entries)
