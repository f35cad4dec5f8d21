"""Launch validation/records and the run lifecycle on the manual clock (no sleeping)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tower_async.testing import FakePlatform


class Api:
    def __init__(self, fake: FakePlatform, session: aiohttp.ClientSession, ws: int) -> None:
        self.fake, self.s, self.ws = fake, session, ws

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        sep = "&" if "?" in path else "?"
        url = f"{self.fake.url}{path}{sep}workspaceId={self.ws}"
        async with self.s.request(method, url, **kw) as resp:
            raw = await resp.read()
            return resp.status, (await resp.json()) if raw else None

    async def launch(self, **fields: Any) -> str:
        ce = self.fake.state.primary_compute_env(self.ws)
        assert ce is not None
        body = {
            "pipeline": "https://github.com/nf-core/rnaseq",
            "computeEnvId": ce.id,
            "workDir": ce.work_dir,
            **fields,
        }
        status, data = await self.call("POST", "/workflow/launch", json={"launch": body})
        assert status == 200, data
        return str(data["workflowId"])

    async def status(self, wf_id: str) -> str:
        code, data = await self.call("GET", f"/workflow/{wf_id}")
        assert code == 200
        return str(data["workflow"]["status"])


async def _api(fake: FakePlatform, session: aiohttp.ClientSession) -> Api:
    return Api(fake, session, fake.workspace_id("my-org", "production"))


async def test_launch_by_pipeline_name_and_records(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        _, found = await api.call("GET", "/pipelines?search=RNASEQ")
        assert [p["name"] for p in found["pipelines"]] == ["nf-core/rnaseq", "nf-core/rnaseq-dev"]
        [exact] = [p for p in found["pipelines"] if p["name"] == "nf-core/rnaseq"]
        _, launch = await api.call("GET", f"/pipelines/{exact['pipelineId']}/launch")
        launch = launch["launch"]
        assert launch["computeEnv"]["id"] and launch["workDir"] and launch["pipeline"]
        body = {
            "pipeline": launch["pipeline"],
            "computeEnvId": launch["computeEnv"]["id"],
            "workDir": launch["workDir"],
            "revision": launch["revision"],
            "paramsText": launch["paramsText"],
            "configProfiles": launch["configProfiles"],
            "runName": "exact-run",
        }
        code, data = await api.call("POST", "/workflow/launch", json={"launch": body})
        assert code == 200
        wf_id = data["workflowId"]
        assert isinstance(wf_id, str) and len(wf_id) == 14 and wf_id.isalnum()
        await api.call("POST", "/workflow/launch", json={"launch": body})
        _, wf = await api.call("GET", f"/workflow/{wf_id}")
        workflow = wf["workflow"]
        assert workflow["runName"] == "exact-run"
        assert workflow["projectName"] == "nf-core/rnaseq"
        assert workflow["params"] == {"input": "samplesheet.csv", "genome": "GRCh38"}
        assert workflow["submit"] and "start" not in workflow and "complete" not in workflow
        assert "-r 3.14.0" in workflow["commandLine"]
        assert wf["workspaceName"] == "production"
    records = fake_platform.state.launches_named("exact-run")
    assert len(records) == 2
    assert records[0].fingerprint == records[1].fingerprint
    assert fake_platform.state.launch_counts()[records[0].fingerprint] == 2
    assert records[0].workflow_id == wf_id
    assert records[0].body["runName"] == "exact-run"
    assert records[0].token == fake_platform.token


async def test_missing_required_launch_fields_are_rejected(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        ce = fake_platform.state.primary_compute_env(api.ws)
        assert ce is not None
        good = {"pipeline": "nf-core/rnaseq", "computeEnvId": ce.id, "workDir": "s3://w"}
        for missing in good:
            body = {k: v for k, v in good.items() if k != missing}
            code, data = await api.call("POST", "/workflow/launch", json={"launch": body})
            assert code == 400
            assert missing in data["message"]
    assert fake_platform.state.launches == []


async def test_lifecycle_submitted_running_succeeded(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        wf_id = await api.launch()
        assert await api.status(wf_id) == "SUBMITTED"
        _, tasks = await api.call("GET", f"/workflow/{wf_id}/tasks")
        assert tasks == {"tasks": [], "total": 0}
        fake_platform.advance(5)
        assert await api.status(wf_id) == "RUNNING"
        fake_platform.advance(30)
        _, progress = await api.call("GET", f"/workflow/{wf_id}/progress")
        load = progress["progress"]["workflowProgress"]
        assert load["running"] == 1 and load["succeeded"] == 2
        fake_platform.advance(30)
        _, wf = await api.call("GET", f"/workflow/{wf_id}")
        assert wf["workflow"]["status"] == "SUCCEEDED"
        assert wf["workflow"]["exitStatus"] == 0 and wf["workflow"]["complete"]
        assert wf["jobInfo"]["exitCode"] == 0
        _, tasks = await api.call("GET", f"/workflow/{wf_id}/tasks")
        assert tasks["total"] == 5
        assert {t["task"]["status"] for t in tasks["tasks"]} == {"COMPLETED"}
        assert {t["task"]["exit"] for t in tasks["tasks"]} == {0}


async def test_failing_runs_are_deterministic(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        bad = await api.launch(paramsText="fail: true\n")
        good = await api.launch(paramsText='{"fail": false}')
        fake_platform.advance(65)
        assert await api.status(bad) == "FAILED"
        assert await api.status(good) == "SUCCEEDED"
        _, tasks = await api.call("GET", f"/workflow/{bad}/tasks")
        last = tasks["tasks"][-1]["task"]
        assert (last["status"], last["exit"]) == ("FAILED", 1)
        _, listing = await api.call("GET", "/workflow?search=status:FAILED")
        assert [w["workflow"]["id"] for w in listing["workflows"]] == [bad]


async def test_cancel_and_delete(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        wf_id = await api.launch()
        fake_platform.advance(10)
        assert (await api.call("DELETE", f"/workflow/{wf_id}"))[0] == 409  # still active
        code, body = await api.call("POST", f"/workflow/{wf_id}/cancel")
        assert (code, body) == (204, None)
        assert await api.status(wf_id) == "CANCELLED"
        fake_platform.advance(1000)
        assert await api.status(wf_id) == "CANCELLED"
        assert (await api.call("POST", f"/workflow/{wf_id}/cancel"))[0] == 400
        _, tasks = await api.call("GET", f"/workflow/{wf_id}/tasks")
        assert tasks["tasks"][-1]["task"]["status"] == "ABORTED"
        assert (await api.call("DELETE", f"/workflow/{wf_id}"))[0] == 204
        assert (await api.call("GET", f"/workflow/{wf_id}"))[0] == 404


async def test_log_download_is_streamed_and_grows_while_running() -> None:
    async with FakePlatform(log_size=3 * 1024 * 1024) as fake:
        async with aiohttp.ClientSession(headers=fake.headers()) as s:
            api = await _api(fake, s)
            wf_id = await api.launch()
            url = f"{fake.url}/workflow/{wf_id}/download?workspaceId={api.ws}&fileName=nf.log"

            async def download() -> bytes:
                async with s.get(url) as resp:
                    assert resp.status == 200
                    assert resp.headers["Transfer-Encoding"] == "chunked"
                    assert resp.content_type == "text/plain"
                    return b"".join([c async for c in resp.content.iter_chunked(1 << 16)])

            assert await download() == b""
            fake.advance(5 + 15)  # a quarter of the run
            quarter = await download()
            fake.advance(30)  # three quarters
            three_quarters = await download()
            fake.advance(60)
            full = await download()
        assert len(quarter) == 3 * 1024 * 1024 // 4
        assert three_quarters.startswith(quarter) and len(three_quarters) > len(quarter)
        assert full.startswith(three_quarters)
        assert full.endswith(b"Execution complete -- Goodbye\n")
        assert len(full) == 3 * 1024 * 1024 + len(b"Execution complete -- Goodbye\n")
        assert full.count(wf_id.encode()) > 1000
