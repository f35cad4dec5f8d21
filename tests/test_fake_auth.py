"""Auth, request validation (fuzz), the served documents, CLI and thread runner."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from tower_async.testing import FAKE_TITLE, FakePlatform, run_in_thread, specs_dir

from .documents import published_document

IMPLEMENTED = {
    "Info": ("get", "/service-info"),
    "UserInfo": ("get", "/user-info"),
    "ListWorkspacesUser": ("get", "/user/{userId}/workspaces"),
    "ListOrganizations": ("get", "/orgs"),
    "ListWorkspaces": ("get", "/orgs/{orgId}/workspaces"),
    "ListComputeEnvs": ("get", "/compute-envs"),
    "DescribeComputeEnv": ("get", "/compute-envs/{computeEnvId}"),
    "ListPipelines": ("get", "/pipelines"),
    "DescribePipelineLaunch": ("get", "/pipelines/{pipelineId}/launch"),
    "CreateWorkflowLaunch": ("post", "/workflow/launch"),
    "ListWorkflows": ("get", "/workflow"),
    "DescribeWorkflow": ("get", "/workflow/{workflowId}"),
    "DeleteWorkflow": ("delete", "/workflow/{workflowId}"),
    "CancelWorkflow": ("post", "/workflow/{workflowId}/cancel"),
    "DescribeWorkflowLaunch": ("get", "/workflow/{workflowId}/launch"),
    "DescribeWorkflowProgress": ("get", "/workflow/{workflowId}/progress"),
    "ListWorkflowTasks": ("get", "/workflow/{workflowId}/tasks"),
    "DownloadWorkflowLog": ("get", "/workflow/{workflowId}/download"),
    "GetWorkflowLog": ("get", "/workflow/{workflowId}/log"),
    "ListLabels": ("get", "/labels"),
    "CreateLabel": ("post", "/labels"),
    "ListDatasetsV2": ("get", "/datasets"),
    "CreateDatasetV2": ("post", "/datasets"),
    "ListDatasets": ("get", "/workspaces/{workspaceId}/datasets"),
    "CreateDataset": ("post", "/workspaces/{workspaceId}/datasets"),
    "UploadDataset": ("post", "/workspaces/{workspaceId}/datasets/{datasetId}/upload"),
    "ListDataLinks": ("get", "/data-links"),
    "ExploreDataLink": ("get", "/data-links/{dataLinkId}/browse"),
    "ExploreDataLinkWithPath": ("get", "/data-links/{dataLinkId}/browse/{path}"),
}


async def test_missing_or_unknown_token_is_403_with_empty_body(
    fake_platform: FakePlatform,
) -> None:
    url = f"{fake_platform.url}/user-info"
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic xyz"}):
            async with s.get(url, headers=headers) as resp:
                assert resp.status == 403
                assert await resp.read() == b""
        async with s.get(f"{fake_platform.url}/service-info") as resp:
            assert resp.status == 200
            info = (await resp.json())["serviceInfo"]
            assert info["apiVersion"] == "1.181.0-fake"
        async with s.get(fake_platform.spec_url) as resp:
            assert resp.status == 200


async def test_token_scoped_to_workspaces(fake_platform: FakePlatform) -> None:
    prod = fake_platform.workspace_id("my-org", "production")
    dev = fake_platform.workspace_id("my-org", "dev")
    scoped = fake_platform.add_token([prod])
    base = fake_platform.url
    async with aiohttp.ClientSession(headers=fake_platform.headers(scoped)) as s:
        async with s.get(f"{base}/workflow?workspaceId={prod}") as resp:
            assert resp.status == 200
        async with s.get(f"{base}/workflow?workspaceId={dev}") as resp:
            assert resp.status == 403
            assert "message" in await resp.json()
        body = {"launch": {"pipeline": "x", "computeEnvId": "y", "workDir": "z"}}
        async with s.post(f"{base}/workflow/launch?workspaceId={dev}", json=body) as resp:
            assert resp.status == 403
        user_id = fake_platform.state.user["id"]
        async with s.get(f"{base}/user/{user_id}/workspaces") as resp:
            entries = (await resp.json())["orgsAndWorkspaces"]
        assert [(e["orgName"], e["workspaceName"]) for e in entries] == [
            ("my-org", None),
            ("my-org", "production"),
        ]
    assert fake_platform.state.launches == []
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        async with s.get(f"{base}/workflow?workspaceId=424242") as resp:
            assert resp.status == 403  # unknown workspace
        async with s.get(f"{base}/user/{user_id}/workspaces") as resp:
            entries = (await resp.json())["orgsAndWorkspaces"]
        names = {(e["orgName"], e["workspaceName"]) for e in entries}
        assert all(("workspaceId" in e) for e in entries)  # null on the org entries
        assert names == {
            ("community", None),
            ("community", "showcase"),
            ("my-org", None),
            ("my-org", "production"),
            ("my-org", "dev"),
        }


async def test_fuzzed_bad_requests_get_4xx_messages_never_500(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    base = fake_platform.url
    launch = f"{base}/workflow/launch?workspaceId={ws}"
    ce = fake_platform.state.primary_compute_env(ws)
    assert ce is not None
    good = {"pipeline": "nf-core/rnaseq", "computeEnvId": ce.id, "workDir": "s3://b/w"}
    bad_posts: list[tuple[str, bytes]] = [
        (launch, b""),
        (launch, b"not json"),
        (launch, b"[1, 2]"),
        (launch, b"{}"),
        (launch, b'{"launch": "x"}'),
        (launch, json.dumps({"launch": {**good, "pipeline": None}}).encode()),
        (launch, json.dumps({"launch": {**good, "pipeline": 5}}).encode()),
        (launch, json.dumps({"launch": {**good, "computeEnvId": ""}}).encode()),
        (
            launch,
            json.dumps({"launch": {k: v for k, v in good.items() if k != "workDir"}}).encode(),
        ),
        (launch, json.dumps({"launch": {**good, "computeEnvId": "nope"}}).encode()),
        (launch, json.dumps({"launch": {**good, "paramsText": "[1, 2]"}}).encode()),
        (launch, json.dumps({"launch": {**good, "paramsText": "a: [b"}}).encode()),
        (launch, json.dumps({"launch": {**good, "configProfiles": "test"}}).encode()),
        (launch, json.dumps({"launch": {**good, "labelIds": [-1]}}).encode()),
        (f"{base}/labels?workspaceId={ws}", b'{"name": 3}'),
        (f"{base}/labels?workspaceId={ws}", b'{"name": "x", "resource": true}'),
        (f"{base}/datasets?workspaceId={ws}", b'{"description": "no name"}'),
        (f"{base}/workspaces/{ws}/datasets/nope/upload", b"x"),
        (f"{base}/workflow/nope/cancel?workspaceId={ws}", b""),
    ]
    bad_gets = [
        f"{base}/workflow?workspaceId=abc",
        f"{base}/workflow?workspaceId={ws}&max=-1",
        f"{base}/workflow?workspaceId={ws}&max=ten",
        f"{base}/workflow?workspaceId={ws}&includeTotalSize=maybe",
        f"{base}/workflow/doesnotexist?workspaceId={ws}",
        f"{base}/pipelines/abc/launch?workspaceId={ws}",
        f"{base}/pipelines/1/launch?workspaceId={ws}",
        f"{base}/compute-envs/nope?workspaceId={ws}",
        f"{base}/labels?workspaceId={ws}&type=weird",
        f"{base}/data-links/nope/browse?workspaceId={ws}",
        f"{base}/user/abc/workspaces",
        f"{base}/orgs/abc/workspaces",
        f"{base}/no/such/path",
    ]
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        for url, data in bad_posts:
            async with s.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
                assert 400 <= r.status < 500, (url, data, r.status)
                assert isinstance((await r.json())["message"], str), (url, data)
        for url in bad_gets:
            async with s.get(url) as r:
                assert 400 <= r.status < 500, (url, r.status)
                assert isinstance((await r.json())["message"], str), url
    assert fake_platform.state.launches == []
    assert fake_platform.errors == []


async def test_catch_all_turns_bugs_into_500_with_message(fake_platform: FakePlatform) -> None:
    def boom(*_: object) -> list[object]:
        raise RuntimeError("bug")

    fake_platform.state.list_workflows = boom  # type: ignore[method-assign,assignment]
    async with (
        aiohttp.ClientSession(headers=fake_platform.headers()) as s,
        s.get(f"{fake_platform.url}/workflow") as resp,
    ):
        assert resp.status == 500
        assert "RuntimeError" in (await resp.json())["message"]
    assert len(fake_platform.errors) == 1
    fake_platform.errors.clear()


async def test_served_document_lists_the_implemented_operations(
    fake_platform: FakePlatform,
) -> None:
    async with aiohttp.ClientSession() as s, s.get(fake_platform.spec_url) as resp:
        assert resp.status == 200
        doc = yaml.safe_load(await resp.text())
    assert doc["openapi"] == "3.0.1"
    assert doc["info"]["title"] == FAKE_TITLE
    assert doc["info"]["version"] == "1.181.0-fake"
    assert doc["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    ops = {
        o["operationId"]: (method, path, o)
        for path, item in doc["paths"].items()
        for method, o in item.items()
    }
    assert {k: v[:2] for k, v in ops.items()} == IMPLEMENTED
    for op_id, (_, _, o) in ops.items():
        if op_id == "Info":
            assert "security" not in o
        else:
            assert o["security"] == [{"BearerAuth": []}], op_id


REAL = specs_dir() / "seqera-api-1.181.0.yaml"


@pytest.mark.skipif(not REAL.is_file(), reason="Platform documents not available")
async def test_operations_match_the_real_platform_document() -> None:
    real = published_document("1.181.0")
    real_ops = {
        o["operationId"]: (method, path)
        for path, item in real["paths"].items()
        for method, o in item.items()
        if isinstance(o, dict) and "operationId" in o
    }
    for op_id, where in IMPLEMENTED.items():
        assert real_ops.get(op_id) == where, op_id


@pytest.mark.skipif(not REAL.is_file(), reason="Platform documents not available")
async def test_serving_a_real_document() -> None:
    async with FakePlatform(spec="1.181.0") as fake, aiohttp.ClientSession() as s:
        async with s.get(f"{fake.url}/service-info") as resp:
            assert (await resp.json())["serviceInfo"]["apiVersion"] == "1.181.0"
        async with s.get(fake.spec_url) as resp:
            assert await resp.read() == REAL.read_bytes()
    with pytest.raises(FileNotFoundError):
        FakePlatform(spec="0.0.1")


def test_run_in_thread_serves_sync_callers() -> None:
    with run_in_thread(rate_limit=None) as fake:
        req = urllib.request.Request(f"{fake.url}/user-info", headers=fake.headers())
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["user"]["userName"] == "fake-user"
        url = fake.url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/service-info", timeout=2)


def test_cli_prints_url_and_token_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tower_async.testing", "--port", "0", "--rate-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        url_line = proc.stdout.readline().strip()
        token_line = proc.stdout.readline().strip()
        assert url_line.startswith("URL: http://127.0.0.1:"), url_line
        assert token_line.startswith("TOKEN: "), token_line
        url, token = url_line.split(" ", 1)[1], token_line.split(" ", 1)[1]
        assert not url.endswith(":0")
        req = urllib.request.Request(
            f"{url}/user-info", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
