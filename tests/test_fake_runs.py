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
        whole_lines = -(-3 * 1024 * 1024 // 100) * 100  # the last line is completed
        assert len(full) == whole_lines + len(b"Execution complete -- Goodbye\n")
        assert full.count(wf_id.encode()) > 1000


def _lines(raw: bytes) -> list[str]:
    assert raw.endswith(b"\n"), raw[-120:]
    return raw.decode().split("\n")[:-1]


async def test_finished_logs_end_every_line_before_the_closing_line() -> None:
    # 1050 bytes: ten and a half 100-byte lines, so the size alone would cut a line
    async with (
        FakePlatform(log_size=1050) as fake,
        aiohttp.ClientSession(headers=fake.headers()) as s,
    ):
        api = await _api(fake, s)
        done = await api.launch()
        failed = await api.launch(paramsText="fail: true")
        cancelled = await api.launch()

        async def download(wf_id: str) -> bytes:
            url = f"{fake.url}/workflow/{wf_id}/download?workspaceId={api.ws}"
            async with s.get(url) as resp:
                assert resp.status == 200
                return await resp.read()

        fake.advance(5 + 60 * 0.33)  # a third of the run: 346 bytes, a partial line
        running = await download(cancelled)
        assert len(running) == 346 and not running.endswith(b"\n")
        assert (await api.call("POST", f"/workflow/{cancelled}/cancel"))[0] == 204
        fake.advance(60)
        logs = {wf_id: await download(wf_id) for wf_id in (done, failed, cancelled)}
    closing = {
        done: "Execution complete -- Goodbye",
        failed: "ERROR ~ Error executing process > 'MULTIQC' -- exit status (1)",
        cancelled: "WARN: Execution aborted by user",
    }
    for wf_id, raw in logs.items():
        *body, last = _lines(raw)
        assert last == closing[wf_id]
        assert body and all(len(line) == 99 for line in body), wf_id
        assert all(line.endswith(".") and f"run {wf_id} log line" in line for line in body)
        assert [int(line.split("log line ")[1][:9]) for line in body] == list(range(len(body)))
    assert len(_lines(logs[done])) == 11 + 1  # 1050 bytes -> 11 whole lines + closing line
    assert logs[cancelled].startswith(running)  # the line being written was completed
    assert len(_lines(logs[cancelled])) == 4 + 1


async def test_get_workflow_log_pages_the_download_lines() -> None:
    async with (
        FakePlatform(log_size=5000, rate_limit=None) as fake,
        aiohttp.ClientSession(headers=fake.headers()) as s,
    ):
        api = await _api(fake, s)
        wf_id = await api.launch()
        base = f"/workflow/{wf_id}/log"

        async def page(**query: Any) -> dict[str, Any]:
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            code, data = await api.call("GET", f"{base}?{qs}" if qs else base)
            assert code == 200, data
            assert set(data) == {"log"}
            return dict(data["log"])

        first = await page()  # SUBMITTED: nothing yet, but a cursor to come back with
        assert first["entries"] == [] and first["pending"] is True
        assert first["truncated"] is False and first["forwardToken"]
        assert first["downloads"][0]["fileName"] == f"nf-{wf_id}.log"

        fake.advance(5 + 60 * 0.25)  # 1250 bytes: 12 whole lines and half of one
        got = await page(next=first["forwardToken"], maxLength=500)
        assert len(got["entries"]) == 5 and got["truncated"] is True
        assert got["pending"] is True
        rest = await page(next=got["forwardToken"])
        assert len(rest["entries"]) == 7 and rest["truncated"] is False
        again = await page(next=got["rewindToken"], maxLength=500)
        assert again["entries"] == got["entries"]
        idle = await page(next=rest["forwardToken"])  # the partial line is held back
        assert idle["entries"] == [] and idle["forwardToken"] == rest["forwardToken"]
        tiny = await page(maxLength=1)  # never stuck: at least one line per page
        assert tiny["entries"] == got["entries"][:1] and tiny["truncated"] is True

        fake.advance(60)
        tail = await page(next=rest["forwardToken"], maxLength=10_000)
        assert tail["pending"] is False and tail["truncated"] is False
        done = await page(next=tail["forwardToken"])
        assert done["entries"] == [] and done["pending"] is False

        url = f"{fake.url}/workflow/{wf_id}/download?workspaceId={api.ws}"
        async with s.get(url) as resp:
            download = _lines(await resp.read())
        paged = got["entries"] + rest["entries"] + tail["entries"]
        assert paged == download
        assert paged[-1] == "Execution complete -- Goodbye"

        bad, data = await api.call("GET", f"{base}?next=not-a-cursor")
        assert bad == 400 and "cursor" in data["message"]
        assert (await api.call("GET", f"{base}?maxLength=0"))[0] == 400
        assert (await api.call("GET", "/workflow/nope/log"))[0] == 404
    assert not fake.errors


async def test_describe_workflow_launch_reports_where_to_resume(
    fake_platform: FakePlatform,
) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        wf_id = await api.launch(
            runName="first",
            revision="3.14.0",
            paramsText='{"fail": true}',
            configProfiles=["test"],
            preRunScript="echo pre",
            userSecrets=["S1"],
        )
        code, data = await api.call("GET", f"/workflow/{wf_id}/launch")
        assert code == 200
        launch = data["launch"]
        assert "resumeCommitId" not in launch  # not started yet: nothing to resume from
        fake_platform.advance(70)
        _, data = await api.call("GET", f"/workflow/{wf_id}/launch")
        launch = data["launch"]
        _, described = await api.call("GET", f"/workflow/{wf_id}")
        run = described["workflow"]
        assert run["status"] == "FAILED" and run["resume"] is False
        assert launch["id"] == run["launchId"]
        assert launch["sessionId"] == run["sessionId"]
        assert launch["resumeDir"] == run["workDir"] == launch["workDir"]
        assert launch["resumeCommitId"] == run["commitId"] and len(run["commitId"]) == 40
        assert launch["computeEnv"]["id"] == fake_platform.state.workflows[wf_id].compute_env_id
        assert launch["revision"] == "3.14.0" and launch["configProfiles"] == ["test"]
        assert launch["paramsText"] == '{"fail": true}'
        assert launch["preRunScript"] == "echo pre" and launch["userSecrets"] == ["S1"]
        code, _ = await api.call("GET", "/workflow/nosuchrun/launch")
        assert code == 404


async def test_resumed_launch_joins_the_session_and_keeps_its_work_dir(
    fake_platform: FakePlatform,
) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        first = await api.launch(runName="r", sessionId="ignored-without-resume")
        fake_platform.advance(70)
        run = fake_platform.state.workflows[first]
        assert run.session_id != "ignored-without-resume"  # a fresh launch: a new session
        resumed = {"resume": True, "sessionId": run.session_id, "workDir": run.work_dir}
        code, data = await api.call(
            "POST", "/workflow/launch", json=fake_platform.launch_body(api.ws, "r", **resumed)
        )
        assert code == 400 and "already been used" in data["message"]
        moved = {**resumed, "workDir": "s3://elsewhere/work"}
        code, data = await api.call(
            "POST", "/workflow/launch", json=fake_platform.launch_body(api.ws, "r2", **moved)
        )
        assert code == 400 and "work directory" in data["message"]
        second = await api.launch(runName="r-r1", **resumed)
        _, described = await api.call("GET", f"/workflow/{second}")
        assert described["workflow"]["resume"] is True
        assert described["workflow"]["sessionId"] == run.session_id
        record = fake_platform.state.launches[-1]
        assert (record.resume, record.session_id) == (True, run.session_id)
        assert fake_platform.state.launches[0].resume is False
        code, data = await api.call(
            "POST", "/workflow/launch", json=fake_platform.launch_body(api.ws, resume="yes")
        )
        assert code == 400 and "resume" in data["message"]


async def test_a_run_without_a_commit_cannot_be_resumed(fake_platform: FakePlatform) -> None:
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        api = await _api(fake_platform, s)
        wf_id = await api.launch()
        fake_platform.state.workflows[wf_id].commit_id = None
        fake_platform.advance(70)
        _, data = await api.call("GET", f"/workflow/{wf_id}/launch")
        assert "resumeCommitId" not in data["launch"] and data["launch"]["sessionId"]
        [seeded] = fake_platform.state.add_workflows(api.ws, 1, status="FAILED")
        _, data = await api.call("GET", f"/workflow/{seeded}/launch")
        assert len(data["launch"]["resumeCommitId"]) == 40
        assert data["launch"]["pipeline"] == "https://github.com/nf-core/rnaseq"
