"""Relaunch and resume against the fake Platform: one run, and every failed run of a batch."""

from __future__ import annotations

import logging
import pickle
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tower_async import RequestValidationError, Tower, TowerValidationWarning
from tower_async.orchestration import (
    Journal,
    LaunchSpec,
    NotResumable,
    RelaunchOutcome,
    bulk_launch,
    derive_run_name,
    relaunch_failed,
)
from tower_async.testing import FakePlatform

from .conftest import spec_path

RICH = {
    "params": {"fail": True, "input": "s3://in/s1.csv"},
    "run_name": "s1",
    "revision": "3.14.0",
    "profiles": ["test", "docker"],
    "config_text": "process.cpus = 2",
    "pre_run_script": "echo pre",
    "post_run_script": "echo post",
    "main_script": "main.nf",
    "entry_name": "RNASEQ",
    "pull_latest": True,
    "stub_run": True,
    "labels": ["urgent"],
    "extra": {"userSecrets": ["S1"], "workspaceSecrets": ["W1"], "schemaName": "schema.json"},
}


async def _failed_run(fake: FakePlatform, tw: Tower, **fields: Any) -> str:
    wid = await tw.launch("nf-core/rnaseq", **{**RICH, **fields})
    fake.advance(70)
    assert (await tw.describe_workflow(workflow_id=wid))["workflow"]["status"] == "FAILED"
    return wid


def _body(fake: FakePlatform, wid: str) -> dict[str, Any]:
    [record] = [r for r in fake.state.launches if r.workflow_id == wid]
    return record.body


async def test_a_relaunch_sends_the_original_launch_with_the_resume_fields(
    fake: FakePlatform, tw: Tower
) -> None:
    wid = await _failed_run(fake, tw)
    original = fake.state.workflows[wid]
    new = await tw.relaunch(wid)
    assert isinstance(new, str) and new != wid
    assert (new.relaunch_of, new.resumed, new.note) == (wid, True, None)
    copy = pickle.loads(pickle.dumps(new))
    assert (copy, copy.relaunch_of, copy.resumed) == (new, wid, True)
    expected = {
        **_body(fake, wid),
        "resume": True,
        "sessionId": original.session_id,
        "workDir": original.work_dir,  # the launch's resumeDir
        "revision": original.commit_id,  # the launch's resumeCommitId
        "id": original.launch_id,
        "runName": "s1-r1",
    }
    assert _body(fake, new) == expected
    assert set(_body(fake, wid)) <= set(expected)  # nothing of the original dropped
    run = (await tw.describe_workflow(workflow_id=new))["workflow"]
    assert run["resume"] is True and run["sessionId"] == original.session_id
    assert fake.state.launches[-1].resume is True
    # relaunching the relaunch continues the numbering and the session
    fake.advance(70)
    again = await tw.relaunch(new)
    assert _body(fake, again)["runName"] == "s1-r2"
    assert fake.state.workflows[again].session_id == original.session_id


async def test_overrides_win_and_names_are_resolved(fake: FakePlatform, tw: Tower) -> None:
    wid = await _failed_run(fake, tw)
    ws = fake.workspace_id("my-org", "production")
    other_ce = fake.state.add_compute_env(ws, "big-ce")
    new = await tw.relaunch(
        wid,
        params={"fail": False, "extra": 1},
        revision="dev",
        profiles=["other"],
        compute_env="big-ce",
        run_name="custom",
        labels=["benchmark"],
        config_text="process.memory = '4 GB'",
        stub_run=False,
    )
    body = _body(fake, new)
    label = next(
        x for x in fake.state.labels.values() if x.name == "benchmark" and x.workspace_id == ws
    )
    assert body["paramsText"] and '"fail":false' in body["paramsText"].replace(" ", "")
    assert '"input":"s3://in/s1.csv"' in body["paramsText"].replace(" ", "")  # merged
    assert (body["revision"], body["configProfiles"], body["runName"]) == (
        "dev",
        ["other"],
        "custom",
    )
    assert body["computeEnvId"] == other_ce.id and body["labelIds"] == [label.id]
    assert body["configText"] == "process.memory = '4 GB'" and body["stubRun"] is False
    assert body["resume"] is True and body["preRunScript"] == "echo pre"  # the rest is kept
    fake.advance(70)
    assert (await tw.describe_workflow(workflow_id=new))["workflow"]["status"] == "SUCCEEDED"
    # from scratch, another pipeline and work directory may be chosen
    scratch = await tw.relaunch(wid, resume=False, pipeline="nf-core/sarek", work_dir="s3://x/w")
    body = _body(fake, scratch)
    assert body["resume"] is False and "sessionId" not in body
    assert body["pipeline"] == "https://github.com/nf-core/sarek"
    assert (body["workDir"], body["revision"]) == ("s3://x/w", "3.14.0")
    assert fake.state.workflows[scratch].session_id != fake.state.workflows[wid].session_id


async def test_a_run_without_resume_commit_is_relaunched_from_scratch_and_says_so(
    fake: FakePlatform, tw: Tower, caplog: pytest.LogCaptureFixture
) -> None:
    wid = await _failed_run(fake, tw)
    fake.state.workflows[wid].commit_id = None  # the run never reported a commit
    launches = len(fake.state.launches)
    with pytest.raises(NotResumable, match=f"run {wid} cannot be resumed"):
        await tw.relaunch(wid, on_not_resumable="error")
    assert len(fake.state.launches) == launches
    with caplog.at_level(logging.WARNING, logger="tower_async.orchestration"):
        new = await tw.relaunch(wid)
    assert new.resumed is False and new.note and "relaunched from scratch" in new.note
    assert any("cannot be resumed" in r.getMessage() for r in caplog.records)
    body = _body(fake, new)
    original = _body(fake, wid)
    assert body["resume"] is False and "sessionId" not in body
    assert (body["revision"], body["workDir"]) == (original["revision"], original["workDir"])
    assert body == {
        **original,
        "resume": False,
        "runName": "s1-r1",
        "id": fake.state.workflows[wid].launch_id,
    }


async def test_resume_with_a_work_dir_change_is_refused_before_any_request(
    fake: FakePlatform, tw: Tower
) -> None:
    wid = await _failed_run(fake, tw)
    calls, launches = fake.stats().calls, len(fake.state.launches)
    with pytest.raises(RequestValidationError) as info:
        await tw.relaunch(wid, work_dir="s3://elsewhere/work")
    assert "work_dir" in str(info.value) and "relaunch" in str(info.value)
    with pytest.raises(RequestValidationError, match="pipeline"):
        await tw.relaunch(wid, pipeline="nf-core/sarek")
    with pytest.raises(RequestValidationError, match="colour"):
        await tw.relaunch(wid, colour="blue")
    with pytest.raises(RequestValidationError, match="on_not_resumable"):
        await tw.relaunch(wid, on_not_resumable="maybe")  # type: ignore[arg-type]
    with pytest.raises(RequestValidationError, match="work_dir"):
        async for _ in tw.relaunch_failed([wid], work_dir="s3://elsewhere/work"):
            pass
    assert (fake.stats().calls, len(fake.state.launches)) == (calls, launches)


@pytest.mark.parametrize("version", ["1.115.0", "1.181.0"])
async def test_relaunch_on_the_platforms_document(
    version: str, tmp_path: Path, shared_cache_dir: Path
) -> None:
    """Bound from a published document, the relaunch request and the fake's answers match it."""
    path = spec_path(version)
    async with (
        FakePlatform(rate_limit=None, spec=path) as fake,
        Tower(
            token=fake.token,
            endpoint=fake.url,
            workspace="my-org/production",
            rate_limit=None,
            cache_dir=shared_cache_dir,
        ) as tw,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error", TowerValidationWarning)
            wid = await _failed_run(fake, tw)
            new = await tw.relaunch(wid)
            await tw.describe_workflow_launch(workflow_id=new)
        body = _body(fake, new)
        run = fake.state.workflows[wid]
        assert (body["resume"], body["sessionId"], body["revision"]) == (
            True,
            run.session_id,
            run.commit_id,
        )
        assert body["id"] == run.launch_id and body["runName"] == "s1-r1"


def test_derived_run_names() -> None:
    assert derive_run_name("s1") == "s1-r1"
    assert derive_run_name("s1-r1") == "s1-r2"
    assert derive_run_name("s1-r9") == "s1-r10"
    assert derive_run_name("-r1") == "-r1-r1"
    assert derive_run_name(None) is None


# ------------------------------------------------------------------ relaunch_failed


@pytest.fixture
async def batch_fake() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(rate_limit=None, failure_rate=0.1, seed=3) as platform:
        yield platform
    assert not platform.errors


async def _session(fake: FakePlatform, tmp_path: Path) -> Tower:
    tw = Tower(
        token=fake.token,
        endpoint=fake.url,
        workspace="my-org/production",
        cache_dir=tmp_path / "cache",
        rate_limit=None,
    )
    await tw.open()
    return tw


async def _batch(fake: FakePlatform, tw: Tower, journal: Path, n: int = 100) -> list[str]:
    specs = (LaunchSpec("nf-core/rnaseq", params={"i": i}, run_name=f"b{i:03d}") for i in range(n))
    outcomes = [o async for o in bulk_launch(tw, specs, journal=journal, concurrency=8)]
    assert all(o.status == "launched" for o in outcomes)
    fake.advance(70)
    return [o.workflow_id for o in outcomes if o.workflow_id]


def _relaunches_of(fake: FakePlatform, wid: str) -> int:
    session = fake.state.workflows[wid].session_id
    return sum(r.resume and r.session_id == session for r in fake.state.launches)


async def test_relaunch_failed_relaunches_exactly_the_failed_runs_once(
    batch_fake: FakePlatform, tmp_path: Path
) -> None:
    fake = batch_fake
    tw = await _session(fake, tmp_path)
    try:
        ids = await _batch(fake, tw, tmp_path / "batch.jsonl")
        failed = {w for w in ids if fake.state.status(fake.state.workflows[w]) == "FAILED"}
        assert 3 <= len(failed) <= 25  # ~10% of 100
        launches, calls = len(fake.state.launches), fake.stats().calls
        out = [
            o
            async for o in tw.relaunch_failed(
                tmp_path / "batch.jsonl", journal=tmp_path / "relaunch.jsonl", concurrency=4
            )
        ]
        # the states come from the run listing (100 a page), not one request per run; then
        # each failed run is described, its launch read, and relaunched
        assert fake.stats().calls - calls <= 3 + 3 * len(failed)
        assert {o.relaunch_of for o in out} == failed and len(out) == len(failed)
        assert all(isinstance(o, RelaunchOutcome) for o in out)
        assert all(
            o.status == "launched" and o.resumed and o.original_status == "FAILED" for o in out
        )
        assert len(fake.state.launches) == launches + len(failed)
        assert all(_relaunches_of(fake, w) == 1 for w in failed)
        for o in out:
            assert o.workflow_id is not None
            new = fake.state.workflows[o.workflow_id]
            assert new.run_name == fake.state.workflows[o.relaunch_of].run_name + "-r1"
        # the relaunch journal links every new run to the run it resumes
        links = {k: e.workflow_id for k, e in Journal(tmp_path / "relaunch.jsonl").load().items()}
        assert links == {f"relaunch:{o.relaunch_of}": o.workflow_id for o in out}
        # a rerun with the same journal relaunches nothing again
        again = [
            o
            async for o in tw.relaunch_failed(
                tmp_path / "batch.jsonl", journal=tmp_path / "relaunch.jsonl"
            )
        ]
        assert {o.status for o in again} == {"skipped"} and len(again) == len(failed)
        assert all(o.resumed is None for o in again)  # relaunched by the earlier call
        assert {o.workflow_id for o in again} == {o.workflow_id for o in out}
        assert len(fake.state.launches) == launches + len(failed)
    finally:
        await tw.close()


async def test_relaunch_failed_takes_ids_or_outcomes_and_other_statuses(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    ws = fake.workspace_id("my-org", "production")
    good = fake.state.add_workflows(ws, 3, status="SUCCEEDED", run_name_prefix="ok")
    bad = fake.state.add_workflows(ws, 2, status="FAILED", run_name_prefix="bad")
    gone = fake.state.add_workflows(ws, 1, status="CANCELLED", run_name_prefix="gone")
    out = [o async for o in relaunch_failed(tw, good + bad + gone + bad, concurrency=2)]
    assert sorted(o.relaunch_of for o in out) == sorted(bad)  # each once, duplicates dropped
    out = [
        o
        async for o in relaunch_failed(
            tw, good + gone, statuses=["cancelled"], resume=False, params={"note": "retry"}
        )
    ]
    [one] = out
    assert one.relaunch_of == gone[0] and one.resumed is False
    assert one.workflow_id is not None
    assert "retry" in _body(fake, one.workflow_id)["paramsText"]
    counts = Counter(r.resume for r in fake.state.launches)
    assert counts == {True: 2, False: 1}


async def test_relaunch_failed_refuses_bad_input_before_any_request(
    fake: FakePlatform, tw: Tower, tmp_path: Path
) -> None:
    calls = fake.stats().calls
    journal = tmp_path / "j.jsonl"
    journal.write_text("")
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (tmp_path / "missing.jsonl", {}, "no journal"),
        (journal, {"journal": journal}, "must not be the journal it reads"),
        (["W1"], {"statuses": ["FAILD"]}, "statuses"),
        (["W1"], {"run_name": "x"}, "run_name"),
        (["W1"], {"concurrency": 0}, "concurrency"),
        ([""], {}, "not a workflow id"),
        ([{"workflowId": "W1"}], {}, "not a workflow id"),
    ]
    for runs, options, message in cases:
        with pytest.raises(RequestValidationError, match=message):
            async for _ in relaunch_failed(tw, runs, **options):
                pass
    assert fake.stats().calls == calls


async def test_hand_built_relaunch_specs_go_through_bulk_launch(
    fake: FakePlatform, tw: Tower
) -> None:
    wid = await _failed_run(fake, tw)
    fake.state.workflows[wid].commit_id = None
    specs = [
        LaunchSpec("", relaunch_of=wid, work_dir="s3://moved/work"),  # resume when possible
        LaunchSpec("", relaunch_of=wid, resume=True, run_name="must-resume"),
        LaunchSpec("", relaunch_of=wid, resume=False, work_dir="s3://moved/work", run_name="x"),
    ]
    launches = len(fake.state.launches)
    out = sorted([o async for o in bulk_launch(tw, specs)], key=lambda o: o.index)
    assert [o.status for o in out] == ["failed", "failed", "launched"]
    assert "work_dir" in (out[0].error or "") and "cannot be resumed" in (out[1].error or "")
    assert len(fake.state.launches) == launches + 1
    assert fake.state.launches[-1].body["workDir"] == "s3://moved/work"
