"""The fake Platform's layout: self-contained, no import loops, middlewares in order."""

from __future__ import annotations

import ast
import base64
import importlib
from pathlib import Path

import aiohttp
import pytest

import tower_async.testing
from tower_async.testing import FakePlatform
from tower_async.testing.pagetokens import (
    decode_log_cursor,
    decode_page_token,
    encode_log_cursor,
    encode_page_token,
)
from tower_async.testing.records import ApiFailure

PACKAGE = Path(tower_async.testing.__file__).parent


def _imports() -> dict[str, set[str]]:
    """Module of the fake -> the absolute modules it imports (``.x`` as tower_async.testing.x)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = "tower_async.testing" if node.level == 1 else ""
                if node.level > 1:
                    base = "tower_async"
                deps.add(".".join(p for p in (base, node.module or "") if p))
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[path.stem] = deps
    return graph


def test_the_fake_imports_nothing_of_the_client() -> None:
    for module, deps in _imports().items():
        client = {
            d
            for d in deps
            if d.startswith("tower_async") and not d.startswith("tower_async.testing")
        }
        assert client == set(), module


def test_the_fake_has_no_import_loops() -> None:
    prefix = "tower_async.testing."
    graph = {
        m: {d[len(prefix) :].split(".")[0] for d in deps if d.startswith(prefix)}
        for m, deps in _imports().items()
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for dep in graph.get(module, ()):
            visit(dep, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_old_names_stay_importable() -> None:
    state = importlib.import_module("tower_async.testing.state")
    for name in ("FakeState", "Workflow", "ApiFailure", "TERMINAL", "LOG_LINE", "log_line", "iso"):
        assert hasattr(state, name), name
    for name in ("encode_page_token", "decode_page_token", "commit_for", "parse_params"):
        assert hasattr(state, name), name
    app = importlib.import_module("tower_async.testing.app")
    for name in ("FakeApp", "Route", "build_routes", "strip_nulls", "encode_log_cursor"):
        assert hasattr(app, name), name


def test_page_tokens_and_log_cursors_round_trip_and_do_not_mix() -> None:
    for n in (0, 1, 99, 10**9):
        assert decode_page_token(encode_page_token(n)) == n
        assert decode_log_cursor(encode_log_cursor(n)) == n
    with pytest.raises(ApiFailure) as page_err:
        decode_page_token(encode_log_cursor(5))
    assert page_err.value.status == 400
    with pytest.raises(ApiFailure) as log_err:
        decode_log_cursor(encode_page_token(5))
    assert log_err.value.status == 400
    negative = base64.urlsafe_b64encode(b"o:-1").decode().rstrip("=")
    for bad in ("!!", "//8", "bzpv", negative):  # empty, not UTF-8, not a number, < 0
        with pytest.raises(ApiFailure):
            decode_page_token(bad)


async def test_auth_and_rate_window_come_before_faults() -> None:
    async with FakePlatform(rate_limit=1) as fake:
        fake.faults.add("UserInfo", "status", status=503)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{fake.url}/user-info") as resp:
                assert resp.status == 403  # no token: the fault is not reached
            async with s.get(f"{fake.url}/user-info", headers=fake.headers()) as resp:
                assert resp.status == 503  # accepted by the window, then faulted
            async with s.get(f"{fake.url}/user-info", headers=fake.headers()) as resp:
                assert resp.status == 429  # the window is full: no fault fires
        assert fake.faults.count_fired("status") == 1
        assert not fake.errors


async def test_faults_come_before_workspace_checks() -> None:
    async with FakePlatform(rate_limit=None) as fake:
        fake.faults.add("ListPipelines", "status", status=502, count=1)
        url = f"{fake.url}/pipelines?workspaceId=nope"
        async with aiohttp.ClientSession(headers=fake.headers()) as s:
            async with s.get(url) as resp:
                assert resp.status == 502
            async with s.get(url) as resp:
                assert resp.status == 400
                assert "workspaceId" in (await resp.json())["message"]
        assert not fake.errors
