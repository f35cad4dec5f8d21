"""Offset- and token-paged listings, labels, datasets and multipart upload."""

from __future__ import annotations

from typing import Any

import aiohttp

from tower_async.testing import FakePlatform


async def _get(s: aiohttp.ClientSession, url: str) -> Any:
    async with s.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_workflow_offset_paging(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "dev")
    ids = fake_platform.state.add_workflows(ws, 250)
    failed = fake_platform.state.add_workflows(ws, 3, status="FAILED", run_name_prefix="boom")
    base = f"{fake_platform.url}/workflow?workspaceId={ws}&includeTotalSize=true"
    seen: list[str] = []
    pages = 0
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        offset = 0
        while True:
            page = await _get(s, f"{base}&max=100&offset={offset}")
            pages += 1
            assert page["totalSize"] == 253
            seen.extend(item["workflow"]["id"] for item in page["workflows"])
            offset += len(page["workflows"])
            if not page["hasMore"]:
                break
            assert pages < 10
        assert pages == 3
        assert seen == list(reversed(ids + failed))  # newest first, no duplicates
        page = await _get(s, f"{base}&search=status:failed")
        assert page["totalSize"] == 3 and not page["hasMore"]
        assert {w["workflow"]["status"] for w in page["workflows"]} == {"FAILED"}
        page = await _get(s, f"{base}&search=bulk_0024&max=5")
        assert sorted(w["workflow"]["runName"] for w in page["workflows"]) == [
            f"bulk_0024{i}"
            for i in range(5, 10)  # newest first
        ]
        assert page["totalSize"] == 10 and page["hasMore"]
        minimal = await _get(s, f"{base}&max=1&attributes=minimal")
        assert "progress" not in minimal["workflows"][0]
        labelled = await _get(s, f"{base}&max=1&attributes=labels,optimized")
        assert labelled["workflows"][0]["labels"] == []
        assert "progress" in labelled["workflows"][0]


async def test_tasks_are_capped_at_100_per_page() -> None:
    async with FakePlatform() as fake:
        fake.state.tasks_per_run = 150
        ws = fake.workspace_id("my-org", "dev")
        [wf] = fake.state.add_workflows(ws, 1, status="SUCCEEDED")
        url = f"{fake.url}/workflow/{wf}/tasks?workspaceId={ws}"
        async with aiohttp.ClientSession(headers=fake.headers()) as s:
            first = await _get(s, f"{url}&max=500")
            second = await _get(s, f"{url}&max=500&offset=100")
        assert (len(first["tasks"]), first["total"]) == (100, 150)
        assert len(second["tasks"]) == 50
        ids = [t["task"]["taskId"] for t in first["tasks"] + second["tasks"]]
        assert ids == list(range(1, 151))


async def test_data_link_token_paging(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("community", "showcase")
    base = fake_platform.url
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        links = await _get(s, f"{base}/data-links?workspaceId={ws}&search=fake")
        assert links["totalSize"] == 1
        link_id = links["dataLinks"][0]["id"]
        root = await _get(s, f"{base}/data-links/{link_id}/browse?workspaceId={ws}")
        assert [(o["type"], o["name"]) for o in root["objects"]] == [
            ("FOLDER", "reads/"),
            ("FOLDER", "results/"),
            ("FILE", "README.md"),
        ]
        assert "nextPageToken" not in root  # omitted on the last page
        names: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            url = f"{base}/data-links/{link_id}/browse/reads?workspaceId={ws}&pageSize=120"
            if token:
                url += f"&nextPageToken={token}"
            page = await _get(s, url)
            pages += 1
            names.extend(o["name"] for o in page["objects"])
            token = page.get("nextPageToken")
            if token is None:
                break
            assert pages < 20
        assert pages == 5  # 500 objects / 120
        assert len(names) == len(set(names)) == 500
        assert names[0] == "sample_0000_R1.fastq.gz"
        nested = await _get(
            s, f"{base}/data-links/{link_id}/browse/results/run_03?workspaceId={ws}"
        )
        assert [o["name"] for o in nested["objects"]] == ["report.html"]
        async with s.get(
            f"{base}/data-links/{link_id}/browse?workspaceId={ws}&nextPageToken=%%"
        ) as r:
            assert r.status == 400


async def test_pipelines_labels_compute_envs(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    base = fake_platform.url
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        pipes = await _get(s, f"{base}/pipelines?workspaceId={ws}&max=2&offset=1")
        assert pipes["totalSize"] == 4 and len(pipes["pipelines"]) == 2
        envs = await _get(s, f"{base}/compute-envs?workspaceId={ws}&status=AVAILABLE")
        [ce] = envs["computeEnvs"]
        assert ce["primary"] is True and ce["workDir"]
        one = await _get(s, f"{base}/compute-envs/{ce['id']}?workspaceId={ws}")
        assert one["computeEnv"]["id"] == ce["id"]
        labels = await _get(s, f"{base}/labels?workspaceId={ws}&type=resource")
        assert [(lab["name"], lab["value"]) for lab in labels["labels"]] == [("project", "alpha")]
        async with s.post(f"{base}/labels?workspaceId={ws}", json={"name": "new-label"}) as r:
            assert r.status == 200
            created = await r.json()
        assert created["name"] == "new-label" and isinstance(created["id"], int)
        labels = await _get(s, f"{base}/labels?workspaceId={ws}&search=new")
        assert [lab["id"] for lab in labels["labels"]] == [created["id"]]
        orgs = await _get(s, f"{base}/orgs")
        my_org = next(o for o in orgs["organizations"] if o["name"] == "my-org")
        wss = await _get(s, f"{base}/orgs/{my_org['orgId']}/workspaces")
        assert sorted(w["name"] for w in wss["workspaces"]) == ["dev", "production"]


async def test_dataset_create_and_multipart_upload(fake_platform: FakePlatform) -> None:
    ws = fake_platform.workspace_id("my-org", "production")
    base = fake_platform.url
    content = b"sample,fastq_1\nS1,s3://b/S1_R1.fastq.gz\n"
    async with aiohttp.ClientSession(headers=fake_platform.headers()) as s:
        async with s.post(
            f"{base}/datasets?workspaceId={ws}", json={"name": "samples", "description": "d"}
        ) as r:
            assert r.status == 200
            ds = (await r.json())["dataset"]
        async with s.post(f"{base}/datasets?workspaceId={ws}", json={"name": "samples"}) as r:
            assert r.status == 409
        for expected_version in (1, 2):
            form = aiohttp.FormData()
            form.add_field("file", content, filename="samples.csv", content_type="text/csv")
            url = f"{base}/workspaces/{ws}/datasets/{ds['id']}/upload?header=true"
            async with s.post(url, data=form) as r:
                assert r.status == 200, await r.text()
                version = (await r.json())["version"]
            assert version["version"] == expected_version
            assert version["fileName"] == "samples.csv"
            assert version["fileSize"] == len(content)
            assert version["hasHeader"] is True
            assert version["datasetId"] == ds["id"]
        form = aiohttp.FormData()
        form.add_field("other", b"x", filename="x.csv")
        async with s.post(f"{base}/workspaces/{ws}/datasets/{ds['id']}/upload", data=form) as r:
            assert r.status == 400
        listing = await _get(s, f"{base}/datasets?workspaceId={ws}")
        assert [(d["name"], d["version"]) for d in listing["datasets"]] == [("samples", 2)]
        old = await _get(s, f"{base}/workspaces/{ws}/datasets")
        assert [d["id"] for d in old["datasets"]] == [ds["id"]]
    assert fake_platform.state.datasets[ds["id"]].contents == [content, content]
