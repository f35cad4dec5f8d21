"""Every operation of every published document binds and builds a request (issue 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
import pytest

from tower_async.operations import bind_operations, snake_case
from tower_async.sansio import build_request
from tower_async.spec import SchemaCache, load_document

from .conftest import VERSIONS, spec_path
from .synth import arguments_for

EXPECTED_COUNTS = {"1.85.0": 201, "1.115.0": 216, "1.181.0": 250}
BASE = "https://api.example.test"


@pytest.fixture(scope="module")
def documents(shared_cache_dir: Path) -> dict[str, dict[str, Any]]:
    cache = SchemaCache(shared_cache_dir)  # the run's: each version is parsed once per run
    out = {}
    for v in VERSIONS:
        out[v] = load_document(spec_path(v), cache=cache, validate=False).document
    return out


def _expected_wire(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return ["true" if v is True else "false" if v is False else str(v) for v in items]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_operation_binds_and_builds(version: str, documents: dict[str, Any]) -> None:
    document = documents[version]
    ops = bind_operations(document)
    assert len(ops) == EXPECTED_COUNTS[version]
    built = 0
    for op_id in ops:
        op = ops[op_id]
        assert op.operation_id == op_id
        assert op.python_name == snake_case(op_id)
        args, body = arguments_for(op, document)
        request = build_request(op, BASE, args, body=body)
        assert request.method == op.method
        url = urlsplit(request.url)
        assert f"{url.scheme}://{url.netloc}" == BASE
        # path: every template variable substituted, percent-encoded
        expected_path = op.path
        for p in op.parameters:
            if p.location == "path":
                joined = ",".join(_expected_wire(args[p.python_name]))
                safe = "-._~!$&'()*+,;=:@" + ("/" if p.carries_path else "")
                expected_path = expected_path.replace("{" + p.name + "}", quote(joined, safe=safe))
        assert url.path == expected_path, op_id
        assert "{" not in url.path
        # query: each parameter, exploded or comma-joined as the document says
        query = parse_qsl(url.query, keep_blank_values=True)
        expected_query: list[tuple[str, str]] = []
        for p in op.parameters:
            if p.location != "query":
                continue
            wire = _expected_wire(args[p.python_name])
            if p.kind == "array" and not p.explode:
                expected_query.append((p.name, ",".join(wire)))
            else:
                expected_query.extend((p.name, w) for w in wire)
        assert sorted(query) == sorted(expected_query), op_id
        for p in op.parameters:
            if p.location == "header":
                assert request.headers[p.name] == ",".join(_expected_wire(args[p.python_name]))
        # body: JSON round-trips; multipart carries the parts
        if op.body is None:
            assert request.body is None and request.multipart is None
        elif request.multipart is not None:
            assert [f.name for f in request.multipart] == list(body)
        else:
            assert request.headers["Content-Type"] == "application/json"
            assert request.body is not None
            assert orjson.loads(request.body) == body
        built += 1
    assert built == EXPECTED_COUNTS[version]


def test_known_operations_route_as_documented(documents: dict[str, Any]) -> None:
    ops = bind_operations(documents["1.181.0"])
    lw = ops["ListWorkflows"]
    req = build_request(
        lw,
        BASE,
        {
            "workspace_id": 7,
            "max": 50,
            "search": "status:FAILED",
            "attributes": ["labels", "optimized"],
        },
    )
    assert req.method == "GET"
    assert req.url == (
        f"{BASE}/workflow?attributes=labels,optimized&workspaceId=7&max=50&search=status%3AFAILED"
    )
    # the spec's own names work too, and the session workspace is the default
    req = build_request(lw, BASE, {"workspaceId": 8}, default_workspace=1)
    assert req.url == f"{BASE}/workflow?workspaceId=8"
    req = build_request(lw, BASE, {}, default_workspace=1)
    assert req.url == f"{BASE}/workflow?workspaceId=1"
    # a parameter that carries a path keeps its slashes; others are encoded
    browse = ops["ExploreDataLinkWithPath"]
    req = build_request(browse, BASE, {"data_link_id": "v1-s3/x", "path": "a/b c/d.txt"})
    assert urlsplit(req.url).path == "/data-links/v1-s3%2Fx/browse/a/b%20c/d.txt"
    launch = ops["CreateWorkflowLaunch"]
    req = build_request(launch, BASE, {"workspace_id": 3}, body={"launch": {"pipeline": "p"}})
    assert (req.method, req.url) == ("POST", f"{BASE}/workflow/launch?workspaceId=3")
    assert orjson.loads(req.body or b"") == {"launch": {"pipeline": "p"}}


def test_docstrings_show_summary_and_parameters(documents: dict[str, Any]) -> None:
    ops = bind_operations(documents["1.181.0"])
    doc = ops["ListWorkflows"].doc
    assert "List workflows" in doc
    assert "workspace_id / workspaceId (query, integer, optional)" in doc
    assert "GET /workflow" in doc


def test_binding_is_lazy_and_immutable(documents: dict[str, Any]) -> None:
    ops = bind_operations(documents["1.181.0"])
    op = ops["DescribeWorkflow"]
    assert ops["DescribeWorkflow"] is op  # bound once
    with pytest.raises(AttributeError):
        op.method = "PUT"  # type: ignore[misc]
    with pytest.raises(TypeError):
        op.responses["200"] = None  # type: ignore[index]
    assert ops.by_python_name("describe_workflow") is op
    assert "describe_workflow" in ops.python_names


def test_spec_path_resolution_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from . import conftest

    monkeypatch.setenv("TOWER_ASYNC_SPECS", str(tmp_path))
    assert conftest.specs_dir() == tmp_path


@pytest.mark.parametrize("version", VERSIONS)
def test_published_documents_need_no_aliases(version: str, documents: dict[str, Any]) -> None:
    import warnings

    from tower_async.session import _reserved_names

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SpecWarning about aliases
        ops = bind_operations(documents[version], reserved=_reserved_names())
    assert dict(ops.aliases) == {}
    assert all(ops[op_id].python_name == snake_case(op_id) for op_id in ops)


def test_alias_names_are_stable_and_distinct() -> None:
    from tower_async.operations import python_names

    names = python_names(["close", "op_close", "Close", "!!!", "???"], reserved={"close"})
    assert names["op_close"] == "op_close"  # its own name wins over an alias
    assert {names["close"], names["Close"]} == {"op_close_2", "op_close_3"}
    assert names["!!!"].startswith("op_x") and names["!!!"] != names["???"]
    assert len(set(names.values())) == len(names)


def test_self_referencing_parameter_schema_binds() -> None:
    loop = {"$ref": "#/components/schemas/Loop"}
    document = {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "get": {
                    "operationId": "GetX",
                    "parameters": [{"name": "q", "in": "query", "schema": loop}],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {"schemas": {"Loop": {"allOf": [loop]}}},
    }
    [param] = bind_operations(document)["GetX"].parameters
    assert param.kind == "any"
