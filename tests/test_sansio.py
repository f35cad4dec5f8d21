"""The sans-I/O request builder and response parser, without any HTTP (issue 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tower_async import (
    BadRequest,
    Forbidden,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
)
from tower_async.operations import bind_operations, snake_case
from tower_async.sansio import RawResponse, build_request, parse_response


def _param(name: str, where: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, **extra}


STRINGS = {"type": "array", "items": {"type": "string"}}
DOC: dict[str, Any] = {
    "openapi": "3.0.0",
    "info": {"title": "styles", "version": "1"},
    "paths": {
        "/things/{ids}/{when}": {
            "get": {
                "operationId": "getThings",
                "parameters": [
                    _param("ids", "path", STRINGS, required=True),
                    _param("when", "path", {"type": "boolean"}, required=True),
                    _param("filter", "query", {"type": "object"}, style="deepObject"),
                    _param("pipes", "query", STRINGS, style="pipeDelimited", explode=False),
                    _param("spaces", "query", STRINGS, style="spaceDelimited", explode=False),
                    _param("flat", "query", {"type": "object"}, explode=True),
                    _param("packed", "query", {"type": "object"}, explode=False),
                    _param("ratio", "query", {"type": "number"}),
                    _param("session", "cookie", {"type": "string"}),
                    _param("X-Tags", "header", STRINGS),
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/upload": {
            "post": {
                "operationId": "upload",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": {"type": "object"}}},
                },
                "responses": {"204": {"description": "ok"}},
            }
        },
        "/report": {
            "get": {
                "operationId": "report",
                "responses": {
                    "200": {
                        "description": "csv",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
}
OPS = bind_operations(DOC)


def test_every_parameter_style() -> None:
    req = build_request(
        OPS["getThings"],
        "http://h",
        {
            "ids": ["a", "b c"],
            "when": False,
            "filter": {"status": "RUNNING", "name": "x y"},
            "pipes": ["1", "2"],
            "spaces": ["3", "4"],
            "flat": {"k1": "v1", "k2": 2},
            "packed": {"k": "v"},
            "ratio": 0.5,
            "session": "abc",
            "x_tags": ["t1", "t2"],
        },
    )
    path, query = req.url.split("?")
    assert path == "http://h/things/a,b%20c/false"
    assert query.split("&") == [
        "filter[status]=RUNNING",
        "filter[name]=x%20y",
        "pipes=1|2",
        "spaces=3%204",
        "k1=v1",
        "k2=2",
        "packed=k,v",
        "ratio=0.5",
    ]
    assert req.headers["Cookie"] == "session=abc"
    assert req.headers["X-Tags"] == "t1,t2"


def test_scalars_for_arrays_none_values_and_empty_paths() -> None:
    op = OPS["getThings"]
    req = build_request(op, "http://h", {"ids": "one", "when": True, "pipes": None})
    assert req.url == "http://h/things/one/true"
    with pytest.raises(RequestValidationError, match=r"path\.ids: path parameters cannot be empty"):
        build_request(op, "http://h", {"ids": "", "when": True})
    with pytest.raises(RequestValidationError, match="given twice"):
        build_request(op, "http://h", {"ids": "a", "when": True, "X-Tags": "a", "x_tags": "b"})
    with pytest.raises(RequestValidationError, match=r"query\.ratio: expected a number"):
        build_request(op, "http://h", {"ids": "a", "when": True, "ratio": "lots"})


def test_multipart_parts_and_bad_parts(tmp_path: Path) -> None:
    op = OPS["upload"]
    req = build_request(op, "http://h", {}, body={"file": ("s.csv", b"x", "text/csv")})
    assert req.body is None and req.multipart is not None
    [part] = req.multipart
    assert (part.name, part.filename, part.content_type, part.value) == (
        "file",
        "s.csv",
        "text/csv",
        b"x",
    )
    with pytest.raises(RequestValidationError, match="no such file"):
        build_request(op, "http://h", {}, body={"file": tmp_path / "missing.csv"})
    with pytest.raises(RequestValidationError, match="expected bytes, str, a path"):
        build_request(op, "http://h", {}, body={"file": 12})
    with pytest.raises(RequestValidationError, match="mapping of field name"):
        build_request(op, "http://h", {}, body=[1, 2])


def test_parse_response_shapes() -> None:
    op = OPS["report"]
    req = build_request(op, "http://h", {})
    csv = RawResponse(200, {"Content-Type": "text/csv"}, b"a,b\n")
    assert parse_response(op, req, csv) == "a,b\n"
    assert parse_response(op, req, RawResponse(204, {}, b"")) is None
    data = parse_response(op, req, RawResponse(200, {"Content-Type": "application/json"}, b"[1]"))
    assert data == [1]
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        parse_response(op, req, RawResponse(200, {"Content-Type": "application/json"}, b'{"a'))
    with pytest.raises(BadRequest) as info:
        parse_response(
            op, req, RawResponse(400, {"Content-Type": "application/json"}, b'{"message":"no"}')
        )
    assert info.value.message == "no" and info.value.body == {"message": "no"}
    with pytest.raises(Forbidden) as forbidden:
        parse_response(op, req, RawResponse(403, {}, b""))
    assert forbidden.value.message is None
    with pytest.raises(ServerError) as server:
        parse_response(op, req, RawResponse(502, {"Content-Type": "text/html"}, b"<h1>Bad</h1>"))
    assert server.value.message == "<h1>Bad</h1>"


def test_request_repr_hides_header_values() -> None:
    req = build_request(
        OPS["report"], "http://h", {}, headers={"Authorization": "Bearer s3cr3t-token"}
    )
    assert "s3cr3t-token" not in repr(req)
    assert "Authorization" in repr(req)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ListWorkflows", "list_workflows"),
        ("workspaceId", "workspace_id"),
        ("Ga4ghRunCreate", "ga4gh_run_create"),
        ("ExportAuditLogsV2Csv", "export_audit_logs_v2_csv"),
        ("X-Trace-Id", "x_trace_id"),
        ("page_token", "page_token"),
        ("class", "class_"),
        ("2fa", "_2fa"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected
