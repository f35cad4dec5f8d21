"""Orchestration against the fake Platform over loopback HTTP: names, launches, waits, logs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tower_async import Tower
from tower_async.orchestration import (
    AmbiguousName,
    LaunchSpec,
    NameNotFound,
    WaitTimeout,
    follow_log,
    launch,
    resolve_compute_env,
    resolve_pipeline,
    resolve_workspace,
    wait_for_run,
    wait_for_runs,
)
from tower_async.testing import FakePlatform


def counter(fake: FakePlatform, operation_id: str):  # type: ignore[no-untyped-def]
    """A no-op fault rule whose ``fired`` counts the calls of ``operation_id``."""
    return fake.faults.add(operation_id, "latency", delay=0.0)


# ------------------------------------------------------------------------------ resolution
async def test_workspace_name_resolves_at_open(fake: FakePlatform, tw: Tower) -> None:
    assert tw.workspace_id == fake.workspace_id("my-org", "production")
    assert await resolve_workspace(tw, "community/showcase") == fake.workspace_id(
        "community", "showcase"
    )
    assert await resolve_workspace(tw, "123") == 123


async def test_workspace_miss_lists_close_names(tw: Tower) -> None:
    with pytest.raises(NameNotFound) as info:
        await resolve_workspace(tw, "my-org/prod")
    assert "my-org/production" in str(info.value)
    assert "my-org/production" in info.value.candidates
    with pytest.raises(NameNotFound, match="organization/workspace"):
        await resolve_workspace(tw, "no-slash")


async def test_session_open_fails_on_unknown_workspace(fake: FakePlatform, tmp_path: Path) -> None:
    session = Tower(
        token=fake.token, endpoint=fake.url, workspace="my-org/nope", cache_dir=tmp_path
    )
    with pytest.raises(NameNotFound, match="my-org/dev"):
        await session.open()


async def test_pipeline_exact_match_never_first_hit(fake: FakePlatform, tw: Tower) -> None:
    calls = counter(fake, "ListPipelines")
    found = await resolve_pipeline(tw, "nf-core/rnaseq")  # search also returns rnaseq-dev
    assert found.name == "nf-core/rnaseq"
    assert found.launch["revision"] == "3.14.0"
    again = await asyncio.gather(*(resolve_pipeline(tw, "nf-core/rnaseq") for _ in range(20)))
    assert all(p is found for p in again)
    assert calls.fired == 1  # memoised per session
    dev = await resolve_pipeline(tw, "nf-core/rnaseq-dev")
    assert dev.pipeline_id != found.pipeline_id and dev.launch["revision"] == "dev"
    with pytest.raises(NameNotFound) as info:
        await resolve_pipeline(tw, "nf-core/rnaseq-de")
    assert "nf-core/rnaseq-dev" in info.value.candidates


async def test_pipeline_match_on_a_later_page_and_duplicates_across_pages(
    fake: FakePlatform, tw: Tower
) -> None:
    ws = tw.workspace_id
    # same lower-case name sorts by id: the exact names land on page 1 and page 2
    fake.state.add_pipeline(ws, "lab/pipe")
    for _ in range(130):
        fake.state.add_pipeline(ws, "LAB/PIPE")
    fake.state.add_pipeline(ws, "lab/pipe")
    for _ in range(130):
        fake.state.add_pipeline(ws, "LAB/ONLY")
    only = fake.state.add_pipeline(ws, "lab/only")
    calls = counter(fake, "ListPipelines")
    assert (await resolve_pipeline(tw, "lab/only")).pipeline_id == only.id
    assert calls.fired == 2  # both pages read
    with pytest.raises(AmbiguousName) as info:
        await resolve_pipeline(tw, "lab/pipe")
    assert len(info.value.candidates) == 2


async def test_compute_env_primary_and_by_name(fake: FakePlatform, tw: Tower) -> None:
    ws = tw.workspace_id
    primary = fake.state.primary_compute_env(ws)
    assert primary is not None
    other = fake.state.add_compute_env(ws, "gpu-batch")
    assert await resolve_compute_env(tw) == primary.id
    assert await resolve_compute_env(tw, "gpu-batch") == other.id
    with pytest.raises(NameNotFound, match="gpu-batch"):
        await resolve_compute_env(tw, "gpu-btach")


# ------------------------------------------------------------------------------ launch by name
async def test_launch_by_name_overlays_saved_configuration(fake: FakePlatform, tw: Tower) -> None:
    ws = tw.workspace_id
    gpu = fake.state.add_compute_env(ws, "gpu-batch")
    wid = await launch(
        tw,
        "nf-core/rnaseq",
        params={"input": "s3://b/sheet.csv", "extra": 1},
        revision="3.15.0",
        profiles=["docker"],
        work_dir="s3://b/work",
        labels=["urgent", "brand-new", "project=beta"],
        run_name="rnaseq-s1",
        compute_env="gpu-batch",
    )
    record = fake.state.launches[-1]
    assert record.workflow_id == wid and record.workspace_id == ws
    body = record.body
    assert body["pipeline"] == "https://github.com/nf-core/rnaseq"
    assert body["computeEnvId"] == gpu.id
    assert body["workDir"] == "s3://b/work"
    assert body["revision"] == "3.15.0"
    assert body["configProfiles"] == ["docker"]
    assert body["runName"] == "rnaseq-s1"
    import json

    assert json.loads(body["paramsText"]) == {
        "input": "s3://b/sheet.csv",
        "genome": "GRCh38",  # kept from the saved launch
        "extra": 1,
    }
    names = {fake.state.labels[i].name: fake.state.labels[i] for i in body["labelIds"]}
    assert set(names) == {"urgent", "brand-new", "project"}
    assert names["project"].resource and names["project"].value == "beta"


async def test_launch_defaults_come_from_the_saved_launch(fake: FakePlatform, tw: Tower) -> None:
    await launch(tw, LaunchSpec("nf-core/rnaseq"))
    body = fake.state.launches[-1].body
    primary = fake.state.primary_compute_env(tw.workspace_id)
    assert primary is not None
    assert body["computeEnvId"] == primary.id
    assert body["workDir"] == primary.work_dir
    assert body["revision"] == "3.14.0" and body["configProfiles"] == ["test"]
    assert "labelIds" not in body and "runName" not in body


async def test_missing_labels_are_created_once(fake: FakePlatform, tw: Tower) -> None:
    creates = counter(fake, "CreateLabel")
    await asyncio.gather(
        *(launch(tw, "hello", labels=["batch-7"], run_name=f"h{i}") for i in range(25))
    )
    assert creates.fired == 1
    assert len([lab for lab in fake.state.labels.values() if lab.name == "batch-7"]) == 1


async def test_launch_into_another_workspace_by_name(fake: FakePlatform, tw: Tower) -> None:
    await launch(tw, "hello", workspace="my-org/dev")
    assert fake.state.launches[-1].workspace_id == fake.workspace_id("my-org", "dev")


# ------------------------------------------------------------------------------ waiting
async def _until(predicate, limit: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(limit / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_wait_for_run_follows_the_fake_clock(fake: FakePlatform, tw: Tower) -> None:
    wid = await launch(tw, "hello")
    seen: list[str | None] = []
    task = asyncio.create_task(
        wait_for_run(
            tw, wid, poll_interval=0.01, max_interval=0.02, on_status=lambda _, s: seen.append(s)
        )
    )
    await _until(lambda: seen == ["SUBMITTED"])
    assert not task.done()
    fake.advance(10)  # RUNNING
    await _until(lambda: "RUNNING" in seen)
    assert not task.done()
    fake.advance(60)
    result = await asyncio.wait_for(task, 5)
    assert result.status == "SUCCEEDED" and result.succeeded and not result.failed
    assert seen == ["SUBMITTED", "RUNNING", "SUCCEEDED"]


async def test_wait_until_running_failed_runs_and_timeout(fake: FakePlatform, tw: Tower) -> None:
    ok = await launch(tw, "hello")
    bad = await launch(tw, "hello", params={"fail": True})
    fake.advance(6)
    assert (await wait_for_run(tw, ok, until="RUNNING", poll_interval=0.01)).status == "RUNNING"
    with pytest.raises(WaitTimeout) as info:
        await wait_for_run(tw, ok, poll_interval=0.01, timeout=0.05)
    assert info.value.last == {ok: "RUNNING"}
    fake.advance(60)
    result = await wait_for_run(tw, bad, poll_interval=0.01)
    assert result.status == "FAILED" and result.failed


async def test_unknown_is_terminal_and_failed_by_default(fake: FakePlatform, tw: Tower) -> None:
    wid = await launch(tw, "hello")
    fake.faults.add("DescribeWorkflow", "drift", drift=("enum",), enum_value="UNKNOWN")
    result = await wait_for_run(tw, wid, poll_interval=0.01, timeout=2)
    assert result.status == "UNKNOWN" and result.failed
    lenient = await wait_for_run(tw, wid, poll_interval=0.01, unknown_is_failure=False)
    assert not lenient.failed and not lenient.succeeded


@pytest.mark.parametrize("n", [3, 40])  # describe each run / read the run listing
async def test_wait_for_runs_yields_each_as_it_finishes(
    fake: FakePlatform, tw: Tower, n: int
) -> None:
    from tower_async.testing import RunDurations

    ids = [await launch(tw, "hello", params={"fail": i % 3 == 0}) for i in range(n)]
    slow = await launch(tw, "hello")
    fake.state.workflows[slow].durations = RunDurations(5, 500)
    got: list[str] = []

    async def collect() -> None:
        async for result in wait_for_runs(
            tw, [*ids, slow], poll_interval=0.01, max_interval=0.02, timeout=10
        ):
            got.append(result.workflow_id)
            if result.workflow_id != slow:
                assert result.failed == (ids.index(result.workflow_id) % 3 == 0)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.05)
    assert got == []
    fake.advance(100)
    await _until(lambda: len(got) == n)
    assert sorted(got) == sorted(ids) and not task.done()
    fake.advance(1000)
    await asyncio.wait_for(task, 5)
    assert got[-1] == slow


async def test_wait_for_runs_times_out_with_the_unfinished(fake: FakePlatform, tw: Tower) -> None:
    wid = await launch(tw, "hello")
    with pytest.raises(WaitTimeout) as info:
        async for _ in wait_for_runs(tw, [wid], poll_interval=0.01, timeout=0.05):
            pass
    assert info.value.last == {wid: "SUBMITTED"}


# ------------------------------------------------------------------------------ logs
async def test_follow_log_streams_lines_as_the_log_grows(fake: FakePlatform, tw: Tower) -> None:
    wid = await launch(tw, "hello")
    lines: list[str] = []

    async def follow() -> None:
        async for line in follow_log(tw, wid, poll_interval=0.01, max_interval=0.02):
            lines.append(line)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    assert lines == []  # SUBMITTED: no log yet
    fake.advance(5 + 30)  # half way through RUNNING
    await _until(lambda: len(lines) > 100)
    partial = len(lines)
    assert not task.done()
    fake.advance(60)
    await asyncio.wait_for(task, 10)
    assert len(lines) > partial
    body = await tw.download_workflow_log(workflow_id=wid)
    full = (await body.read()).decode().split("\n")
    if full and full[-1] == "":
        full.pop()
    assert lines == full  # every line exactly once, in order
    assert "Execution complete" in lines[-1]


async def test_wait_for_runs_reads_states_from_the_paged_listing(
    fake: FakePlatform, tw: Tower
) -> None:
    ids = [await launch(tw, "hello") for _ in range(130)]  # more than one page of 100
    fake.advance(1000)
    listed, described = counter(fake, "ListWorkflows"), counter(fake, "DescribeWorkflow")
    got = [r.workflow_id async for r in wait_for_runs(tw, ids, poll_interval=0.01, timeout=10)]
    assert sorted(got) == sorted(ids)
    assert described.fired == 0  # every run was on the listing
    assert 2 <= listed.fired <= 4  # pages of 100, bounded by 2 + 2 * (130 // 100)
