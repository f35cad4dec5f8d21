"""The package's shape: no function over 60 lines or above cyclomatic complexity 20.

Data literals (a dict, list, set or tuple display of three or more lines with no logic
inside) do not count as lines.  Complexity is ruff's C901 (McCabe), so this agrees with
``ruff check --select C901 --config 'lint.mccabe.max-complexity=20'``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tower_async"
MAX_LINES = 60
MAX_COMPLEXITY = 20

#: files allowed to break the rules (none: keep it that way)
ALLOWED: frozenset[str] = frozenset()

_DISPLAYS = (ast.Dict, ast.List, ast.Set, ast.Tuple)
_LOGIC = (ast.Lambda, ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _is_data(node: ast.AST) -> bool:
    return isinstance(node, _DISPLAYS) and not any(isinstance(n, _LOGIC) for n in ast.walk(node))


def code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``fn`` (signature to last line) that are not inside a data literal."""
    assert fn.end_lineno is not None
    lines = set(range(fn.lineno, fn.end_lineno + 1))
    for node in ast.walk(fn):
        if not isinstance(node, ast.expr):
            continue
        if _is_data(node) and node.end_lineno is not None and node.end_lineno - node.lineno >= 2:
            lines -= set(range(node.lineno + 1, node.end_lineno + 1))  # keep the opening line
    return len(lines)


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def long_functions(root: Path = PACKAGE) -> list[str]:
    """``file:line name (N lines)`` for every function over MAX_LINES code lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = code_lines(node)
                if n > MAX_LINES:
                    found.append(f"{_relative(path, root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def _ruff() -> list[str] | None:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return [exe] if Path(exe).is_file() else None


def complex_functions(root: Path = PACKAGE) -> list[str]:
    """``file:line message`` for every C901 finding above MAX_COMPLEXITY (ruff)."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff) to measure complexity")
    config = f"lint.mccabe.max-complexity={MAX_COMPLEXITY}"
    args = ["check", "--select", "C901", "--config", config, "--output-format", "json"]
    done = subprocess.run(
        [*ruff, *args, "--no-cache", "--isolated", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    findings = json.loads(done.stdout or "[]")
    return [
        f"{_relative(Path(f['filename']), root)}:{f['location']['row']} {f['message']}"
        for f in findings
    ]


def _offenders(found: list[str]) -> list[str]:
    return [f for f in found if f.split(":", 1)[0] not in ALLOWED]


def test_no_function_is_over_60_lines() -> None:
    assert _offenders(long_functions()) == []


def test_no_function_is_above_complexity_20() -> None:
    assert _offenders(complex_functions()) == []


def test_the_checkers_find_a_long_and_a_complex_function(tmp_path: Path) -> None:
    body = "\n".join(f"    if x == {i}:\n        x += {i}" for i in range(30))
    (tmp_path / "bad.py").write_text(f"def bad(x):\n{body}\n    return x\n")
    data = ",\n".join(f"        {i}: 'v{i}'" for i in range(80))
    (tmp_path / "data.py").write_text(f"def table():\n    return {{\n{data},\n    }}\n")
    assert [f.split(" (")[0] for f in long_functions(tmp_path)] == ["bad.py:1 bad"]
    assert [f.split(":")[0] for f in complex_functions(tmp_path)] == ["bad.py"]


def test_the_allow_list_names_only_files_that_exist() -> None:
    assert all((PACKAGE / name).is_file() for name in ALLOWED)
