"""The package's import graph has no loops (``python tools/import_graph.py``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "tools" / "import_graph.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def test_module_level_imports_form_a_dag() -> None:
    graph = _tool()
    edges = graph.edges(ROOT / "tower_async")
    assert sum(e.kind == "module" for e in edges) > 100  # the walk saw the package
    assert graph.cycles([e for e in edges if e.kind == "module"]) == []


def test_function_level_imports_add_no_loop() -> None:
    graph = _tool()
    edges = graph.edges(ROOT / "tower_async")
    assert any(e.kind == "function" for e in edges)
    assert graph.cycles([e for e in edges if e.kind != "typing"]) == []


def test_orchestration_does_not_import_the_session() -> None:
    # it takes tower_async.abc.SessionLike instead, even for type checkers
    edges = _tool().edges(ROOT / "tower_async")
    assert not [
        e
        for e in edges
        if e.source.startswith("tower_async.orchestration") and e.target == "tower_async.session"
    ]


def test_the_tool_finds_loops_of_each_kind(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from ..b import f
            from .. import a
            """
        )
    )
    graph = _tool()
    edges = graph.edges(pkg)
    kinds = {(e.source, e.target): e.kind for e in edges}
    assert kinds == {
        ("pkg.a", "pkg.b"): "module",
        ("pkg.b", "pkg.sub.c"): "function",
        ("pkg.sub.c", "pkg.b"): "typing",
        ("pkg.sub.c", "pkg.a"): "module",
    }
    assert graph.cycles([e for e in edges if e.kind == "module"]) == []
    assert graph.cycles([e for e in edges if e.kind != "typing"]) == [
        ["pkg.a", "pkg.b", "pkg.sub.c"]
    ]
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_graph.py"), str(pkg), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout
    assert "module+function-level loops: 1" in run.stdout
