"""Kill tests: a bulk launch in a child process, SIGINT/SIGKILL at seeded random moments,
reruns with the same journal until done; the standalone fake's runs must show every item
launched exactly once.  Also: two processes on one journal, and the example after Ctrl-C.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tower_async.orchestration import Journal, LaunchSpec
from tower_async.orchestration.bulk import derive_run_name

from . import zygote
from .conftest import soak

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "bulk_child.py"
ITEMS = 60
CHILD_RATE = "250"  # the child's calls/s: the launches run ~0.25 s after the first outcome
# kill trials per signal; TOWER_ASYNC_SOAK=N runs N times as many (e.g. 10 for a soak)
SOAK = soak(1)
TRIALS = 3 * SOAK
ROWS = 120  # samplesheet rows for the example's runs
# the launch route answers, processes and then drops, processes and then answers late, or
# answers 200 with something that is not a launch answer
FAULTS = [
    "CreateWorkflowLaunch:drop_after:probability=0.03",
    "CreateWorkflowLaunch:latency:delay=0.4,when=after,probability=0.08",
    "CreateWorkflowLaunch:unreadable:variant=object,probability=0.01",
    "CreateWorkflowLaunch:unreadable:variant=array,probability=0.01",
    "CreateWorkflowLaunch:unreadable:variant=empty,probability=0.01",
    "CreateWorkflowLaunch:unreadable:variant=html,probability=0.01",
]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@dataclass
class Fake:
    url: str
    token: str
    proc: zygote.Popen

    def get(self, path: str, **query: object) -> object:
        """GET path; a 429 (a rate-limited fake whose window the children filled) waits."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        for _ in range(100):  # bounded: a 1 s window empties within 100 x 50 ms
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.load(resp)
            except urllib.error.HTTPError as exc:
                if exc.code != 429:
                    raise
                time.sleep(0.05)
        raise AssertionError(f"{path}: still 429 after 5 s")

    def runs_named(self, prefix: str) -> Counter[str]:
        """runName -> how many runs the fake holds with that name (ListWorkflows, paged)."""
        user = self.get("/user-info")["user"]["id"]  # type: ignore[index]
        spaces = self.get(f"/user/{user}/workspaces")["orgsAndWorkspaces"]  # type: ignore[index]
        ws = next(w["workspaceId"] for w in spaces if w.get("workspaceName") == "production")
        names: Counter[str] = Counter()
        offset = 0
        while True:
            page = self.get("/workflow", workspaceId=ws, search=prefix, max=100, offset=offset)
            items = page["workflows"]  # type: ignore[index]
            for item in items:
                name = item["workflow"]["runName"]
                if name.startswith(prefix):
                    names[name] += 1
            if len(items) < 100:
                return names
            offset += 100


def _start_fake(*extra: str) -> Iterator[Fake]:
    cmd = [sys.executable, "-m", "tower_async.testing", "--port", "0", "--rate-limit", "0"]
    proc = zygote.Popen([*cmd, "--seed", "10", *extra], stdout=zygote.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" ", 1)[1].strip()
        token = proc.stdout.readline().split(" ", 1)[1].strip()
        yield Fake(url, token, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def clean_fake() -> Iterator[Fake]:
    yield from _start_fake()


@pytest.fixture(scope="module")
def faulty_fake() -> Iterator[Fake]:
    yield from _start_fake(*(arg for rule in FAULTS for arg in ("--fault", rule)))


def _env() -> dict[str, str]:
    """No token or endpoint from the environment; the run's user cache
    (``_isolated_user_cache``), where the fakes' document is already filed, so a child
    binds it without parsing and validating it again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWER_")}
    env["TOWER_ASYNC_CACHE_DIR"] = os.environ["TOWER_ASYNC_CACHE_DIR"]
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"  # the tests act on the children's lines as they come
    return env


def child(fake: Fake, journal: Path, prefix: str, *extra: str) -> zygote.Popen:
    cmd = [sys.executable, str(CHILD), "--url", fake.url, "--token", fake.token]
    cmd += ["--journal", str(journal), "--prefix", prefix, *extra]
    return zygote.Popen(cmd, stdout=zygote.PIPE, text=True, env=_env(), cwd=REPO)


def wait_for_line(proc: zygote.Popen, word: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith(word):
            return lines
    raise AssertionError(f"the child ended without printing {word}: {lines}")


def expected_names(prefix: str, derive: bool) -> set[str]:
    if not derive:
        return {f"{prefix}-{i:04d}" for i in range(ITEMS)}
    keys = (
        LaunchSpec("nf-core/rnaseq", params={"sample": f"{prefix}-{i:04d}"}).journal_key
        for i in range(ITEMS)
    )
    return {derive_run_name(f"{prefix}-{{digest}}", key) for key in keys}


def trial(fake: Fake, tmp: Path, sig: int, seed: int) -> Counter[str]:
    """One kill and the reruns; what the journal held right after the kill."""
    rng = random.Random(seed)
    prefix = f"k{sig}x{seed}"
    derive = seed % 2 == 0  # some inputs have no run names: derived from the journal key
    # the fakes process every launch before they answer (or drop) it: a short reconcile delay
    extra = ["--items", str(ITEMS), "--rate", CHILD_RATE, "--reconcile-delay", "0.1"]
    extra += ["--derive-names"] if derive else []
    journal = tmp / f"{prefix}.jsonl"
    proc = child(fake, journal, prefix, *extra)
    wait_for_line(proc, "FIRST")
    time.sleep(rng.uniform(0.0, 0.15))  # the rest of the launches take ~0.25 s or more
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    after_kill = Counter(
        "in_doubt" if e.in_doubt else e.status for e in Journal(journal).load().values()
    )
    for _ in range(5):  # rerun with the same journal until everything has a run
        rerun = child(fake, journal, prefix, *extra)
        out, _ = rerun.communicate(timeout=60)
        if rerun.returncode == 0:
            break
    assert rerun.returncode == 0, out
    entries = Journal(journal).load()
    assert len(entries) == ITEMS and {e.status for e in entries.values()} == {"launched"}
    runs = fake.runs_named(f"{prefix}-")
    assert set(runs) == expected_names(prefix, derive)  # nothing lost
    assert set(runs.values()) == {1}, {n: c for n, c in runs.items() if c > 1}  # none twice
    return after_kill


@pytest.mark.timeout(60 * SOAK)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_bulk_launch_reruns_to_exactly_once(
    clean_fake: Fake, faulty_fake: Fake, tmp_path: Path, sig: int
) -> None:
    states = [
        trial(faulty_fake if seed % 3 else clean_fake, tmp_path, sig, seed)
        for seed in range(TRIALS)
    ]
    # the seeded moments do land mid-run: some items launched, others not yet
    assert sum(0 < s["launched"] < ITEMS for s in states) * 2 >= TRIALS, states
    if sig == signal.SIGKILL:  # requests in flight at the kill, settled by the rerun
        assert sum(s["in_doubt"] for s in states) >= 1, states
    else:  # Ctrl-C journals the items it stopped before their request went out
        assert sum(s["not_sent"] for s in states) >= 1, states


@pytest.mark.timeout(60)
def test_second_process_on_the_journal_is_refused_and_launches_nothing(
    clean_fake: Fake, tmp_path: Path
) -> None:
    journal = tmp_path / "shared.jsonl"
    slow = ["--items", "120", "--rate", "60", "--concurrency", "4"]
    first = child(clean_fake, journal, "lock1", *slow)
    wait_for_line(first, "FIRST")
    second = child(clean_fake, journal, "lock1", *slow)
    out2, _ = second.communicate(timeout=30)
    out1, _ = first.communicate(timeout=30)
    assert second.returncode == 4, out2
    assert "JournalLocked" in out2 and str(journal) in out2 and f"process {first.pid}" in out2
    assert first.returncode == 0, out1
    runs = clean_fake.runs_named("lock1-")
    assert len(runs) == 120 and set(runs.values()) == {1}


def _example_env(fake: Fake) -> dict[str, str]:
    return _env() | {
        "TOWER_ACCESS_TOKEN": fake.token,
        "TOWER_API_ENDPOINT": fake.url,
    }


def _example_cmd(fake: Fake, tmp_path: Path, prefix: str) -> list[str]:
    """examples/bulk_launch.py on a ROWS-row samplesheet, with a journal, not waiting."""
    sheet = tmp_path / f"{prefix}.csv"
    with sheet.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "fastq_1"])
        writer.writerows([f"x{i:03d}", f"s3://b/x{i}.fq"] for i in range(ROWS))
    # run with SIGINT as Ctrl-C (tests/sigint_default.py): under nohup or `cmd &` in a
    # script, the child would inherit SIGINT ignored and Ctrl-C would never reach it
    example = REPO / "examples" / "bulk_launch.py"
    cmd = [
        sys.executable,
        str(REPO / "tests" / "sigint_default.py"),
        str(example),
        "-s",
        str(sheet),
    ]
    cmd += ["-w", "my-org/production", "-j", str(tmp_path / f"{prefix}.jsonl"), "--no-wait"]
    return [*cmd, "--prefix", prefix, "--rate", "300"]


@pytest.mark.timeout(60)
def test_example_prints_the_summary_and_exits_non_zero_after_ctrl_c(
    clean_fake: Fake, tmp_path: Path
) -> None:
    env = _example_env(clean_fake)
    cmd = _example_cmd(clean_fake, tmp_path, "ex")
    proc = zygote.Popen(cmd, stdout=zygote.PIPE, text=True, env=env, cwd=REPO)
    wait_for_line(proc, "Workspace")
    time.sleep(0.15)  # the launches take ~0.4 s
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    m = re.search(rf"^{ROWS} rows: (\d+) launched, (\d+) not launched", out, re.M)
    assert m, out
    launched, missing = int(m[1]), int(m[2])
    assert launched + missing == ROWS and missing > 0
    assert "Interrupted" in out
    assert sum(clean_fake.runs_named("ex-").values()) >= launched
    done = zygote.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stdout
    assert f"{ROWS} rows: {ROWS} launched, 0 not launched" in done.stdout
    runs = clean_fake.runs_named("ex-")
    assert len(runs) == ROWS and set(runs.values()) == {1}


@pytest.mark.timeout(90)
def test_example_counts_unresolved_rows_as_not_launched(faulty_fake: Fake, tmp_path: Path) -> None:
    cmd = [*_example_cmd(faulty_fake, tmp_path, "unres"), "--on-uncertain", "skip"]
    env = _example_env(faulty_fake)
    for _ in range(2):  # the rerun skips them again: still not launched
        run = zygote.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
        assert run.returncode == 1, run.stdout
        m = re.search(
            rf"^{ROWS} rows: (\d+) launched, (\d+) not launched \((\d+) may", run.stdout, re.M
        )
        assert m and int(m[2]) == int(m[3]) > 0, run.stdout
    cmd.remove("skip")
    cmd.remove("--on-uncertain")
    done = zygote.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stdout  # the default looks them up by name
    assert f"{ROWS} rows: {ROWS} launched, 0 not launched" in done.stdout
    runs = faulty_fake.runs_named("unres-")
    assert len(runs) == ROWS and set(runs.values()) == {1}
