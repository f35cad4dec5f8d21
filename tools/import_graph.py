"""The import graph of a package, from its source (``ast``, nothing imported), and its loops.

Every ``import``/``from ... import`` between the package's own modules is an edge, of one of
three kinds:

* ``module`` - runs when the importing module is imported (top level, not under
  ``if TYPE_CHECKING:``);
* ``function`` - inside a function or method body: runs when it is called;
* ``typing`` - under ``if TYPE_CHECKING:``: seen only by type checkers.

``python tools/import_graph.py [package_dir]`` prints the edge counts per kind and every
cycle (strongly connected component with more than one module) of the module-level graph
and of the graph of all edges, and exits 1 when the module-level graph is not a DAG (2 when
the graph of all edges is not either, with ``--strict``).  ``from pkg import name`` where
``name`` is a submodule counts as an import of that submodule; the implicit import of a
module's parent packages does not count (as in grimp / import-linter).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("module", "function", "typing")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    line: int


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every ``.py`` under the package directory ``root``."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind."""

    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, kind
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "function")
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), kind)
            else:
                yield from walk(child, kind)

    yield from walk(tree, "module")


def _targets(
    node: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: Iterable[str]
) -> Iterator[str]:
    known = set(known)
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    for alias in node.names:
        sub = f"{prefix}.{alias.name}"
        if sub in known:
            yield sub
        elif prefix in known:
            yield prefix


def edges(root: Path) -> list[Edge]:
    """Every import between the package's own modules."""
    found = modules(root)
    result: list[Edge] = []
    for name, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node, kind in _imports(tree):
            for target in _targets(node, name, is_package, found):
                if target != name:
                    result.append(Edge(name, target, kind, node.lineno))
    return result


def cycles(graph_edges: Iterable[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in graph_edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth = module count, small
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "package", nargs="?", default=str(Path(__file__).parents[1] / "tower_async")
    )
    parser.add_argument("--strict", action="store_true", help="fail on any loop, all edges")
    args = parser.parse_args(argv)
    all_edges = edges(Path(args.package))
    for kind in KINDS:
        print(f"{kind}-level imports: {sum(e.kind == kind for e in all_edges)}")
    status = 0
    views = [
        ("module-level", [e for e in all_edges if e.kind == "module"], 1),
        ("module+function-level", [e for e in all_edges if e.kind != "typing"], 2),
        ("all (with TYPE_CHECKING)", all_edges, 2),
    ]
    for title, chosen, code in views:
        found = cycles(chosen)
        print(f"{title} loops: {len(found)}")
        for component in found:
            inside = set(component)
            print("  " + " <-> ".join(component))
            for e in chosen:
                if e.source in inside and e.target in inside:
                    print(f"    {e.source} -> {e.target} ({e.kind}, line {e.line})")
        if found and (code == 1 or args.strict):
            status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
