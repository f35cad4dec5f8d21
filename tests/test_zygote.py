"""tests/zygote.py: children forked from a pre-imported interpreter behave as new ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from . import zygote

SCRIPT = """\
import os, sys, time
mode = sys.argv[1]
print("ARGV", sys.argv[1:], flush=True)
print("CWD", os.getcwd(), flush=True)
print("ENV", os.environ.get("ZYGOTE_TEST"), "TOWER_X" in os.environ, flush=True)
print("MAIN", __name__, flush=True)
if mode == "exit":
    sys.exit(3)
if mode == "raise":
    raise ValueError("boom")
if mode == "sleep":
    print("READY", flush=True)
    time.sleep(30)
if mode == "stderr":
    print("to stderr", file=sys.stderr)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(SCRIPT)
    return path


def test_argv_cwd_environment_and_exit_status(script: Path, tmp_path: Path) -> None:
    env = {"ZYGOTE_TEST": "yes", "PATH": os.environ.get("PATH", "")}
    done = zygote.run(
        [sys.executable, str(script), "exit", "x y"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0] == "ARGV ['exit', 'x y']"
    assert lines[1] == f"CWD {tmp_path}"
    assert lines[2] == "ENV yes False"  # the environment given, not the zygote's
    assert lines[3] == "MAIN __main__"


def test_an_uncaught_exception_exits_1_with_its_traceback(script: Path) -> None:
    done = zygote.run([sys.executable, str(script), "raise"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "ValueError: boom" in done.stderr


def test_signals_reach_the_child_and_its_status_says_so(script: Path) -> None:
    for sig, expected in ((signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, -signal.SIGINT)):
        proc = zygote.Popen([sys.executable, str(script), "sleep"], stdout=zygote.PIPE, text=True)
        assert proc.stdout is not None
        while proc.stdout.readline().strip() != "READY":
            pass
        assert proc.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == expected  # Ctrl-C uncaught: ended by SIGINT
        proc.stdout.close()
        with pytest.raises(ProcessLookupError):
            os.kill(proc.pid, 0)  # reaped: not a zombie left behind


def test_modules_run_with_dash_m_and_stderr_is_separate(script: Path) -> None:
    done = zygote.run(
        [sys.executable, "-m", "tests.zygote_probe"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "probe tests.zygote_probe __main__"
    err = zygote.run([sys.executable, str(script), "stderr"], capture_output=True, text=True)
    assert err.stderr == "to stderr\n" and "to stderr" not in err.stdout


def test_run_kills_a_child_past_its_timeout(script: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        zygote.run([sys.executable, str(script), "sleep"], capture_output=True, timeout=0.5)
