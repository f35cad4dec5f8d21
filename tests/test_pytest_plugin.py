"""The pytest plugin registered by installing tower-async must not break other test runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# An environment where tower-async is installed without its test extra: pytest-asyncio's own
# plugin is not loaded (-p no:asyncio) and `import pytest_asyncio` fails (a package of that
# name that raises ImportError comes first on sys.path).
def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    hide = tmp_path / "hide" / "pytest_asyncio"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('pytest-asyncio is not installed')\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:asyncio",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_user.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{tmp_path / 'hide'}:{REPO}", "PATH": "/usr/bin:/bin"},
    )


def test_an_unrelated_test_file_runs_without_pytest_asyncio(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import sys

        def test_plain():
            assert 1 + 1 == 2

        def test_the_plugin_loaded_nothing_heavy():
            assert "tower_async.testing.server" not in sys.modules
            assert "pytest_asyncio" not in sys.modules
            try:
                import pytest_asyncio  # noqa: F401
            except ImportError:
                pass
            else:
                raise AssertionError("pytest-asyncio should not be importable here")
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_fixture_works_in_sync_tests_without_pytest_asyncio(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import json
        import urllib.request

        def test_fake(fake_platform):
            with urllib.request.urlopen(f"{fake_platform.url}/service-info") as r:
                assert "serviceInfo" in json.load(r)
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
