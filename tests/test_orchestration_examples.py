"""The examples run as is against the embedded fake Platform (no token in the environment)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tower_async import testing
from tower_async.orchestration import Journal

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_bulk_launch_example_launches_every_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    example = load("bulk_launch")
    journal = tmp_path / "j.jsonl"
    args = example.parse(["--no-wait", "--journal", str(journal)])
    assert await example.main(args) == 0
    out = capsys.readouterr().out
    assert "using the embedded fake Platform" in out
    assert "24 rows: 24 launched, 0 not launched" in out
    assert len(journal.read_text().splitlines()) == 48  # started + launched per row


async def test_export_runs_example_writes_every_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    example = load("export_runs")
    out_file = tmp_path / "runs.csv"
    with out_file.open("w", newline="") as fh:
        assert await example.main(example.parse(["-o", str(out_file)]), fh) == 0
    lines = out_file.read_text().splitlines()
    assert lines[0].startswith("id,runName,status")
    assert len(lines) == 1 + 245
    assert "using the embedded fake Platform" in capsys.readouterr().err


async def test_relaunch_failed_example_resumes_the_failed_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def quick(submitted: float, running: float) -> testing.RunDurations:
        return real(submitted=submitted / 10, running=running / 10)

    real = testing.RunDurations  # the demo runs take 1.2 s of real time: 0.12 s here
    monkeypatch.setattr(testing, "RunDurations", quick)
    example = load("relaunch_failed")
    journal = tmp_path / "batch.jsonl"
    assert await example.main(example.parse(["-j", str(journal), "--strict"])) == 0
    out = capsys.readouterr().out
    assert "using the embedded fake Platform" in out
    assert "Before: 10 runs" in out and "2 FAILED, 8 SUCCEEDED" in out
    assert "relaunched 2 (1 from scratch), 0 not relaunched; after: 2 SUCCEEDED" in out
    links = Journal(tmp_path / "batch.relaunch.jsonl").load()
    assert len(links) == 2 and all(k.startswith("relaunch:") for k in links)
    assert {e.status for e in links.values()} == {"launched"}
