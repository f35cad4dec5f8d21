"""Hostile and careless arguments: a RequestValidationError before any I/O (issue 11).

Each bad value is sent to a session on the Platform's published 1.181.0 document whose
endpoint is a loopback server that records every request: the server must see none.  The
encodings that *should* work (``search=café``) run against the fake Platform.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path
from typing import Any

import pytest

from tower_async import RequestValidationError, Tower, TowerError
from tower_async.errors import ConfigurationError
from tower_async.operations import bind_operations
from tower_async.orchestration import NameNotFound
from tower_async.sansio import build_request
from tower_async.spec import SchemaCache, load_document
from tower_async.testing import FakePlatform

from .conftest import spec_path
from .loopback import Server, published_fixture, server_fixture  # noqa: F401 - fixtures

BASE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def ops(shared_cache_dir: Path) -> Any:
    cache = SchemaCache(shared_cache_dir)  # the run's: 1.181.0 is parsed once per run
    return bind_operations(
        load_document(spec_path("1.181.0"), cache=cache, validate=False).document
    )


BAD_CALLS: dict[str, tuple[str, dict[str, Any], str]] = {
    "arabic-digits": ("DescribeWorkspace", {"org_id": "١٢٣", "workspace_id": 1}, "path.orgId"),
    "superscript": ("ListWorkflows", {"workspace_id": "²"}, "query.workspaceId"),
    "double-minus": ("ListWorkflows", {"workspace_id": "--5"}, "query.workspaceId"),
    "bool-for-int": ("ListWorkflows", {"max": True}, "query.max"),
    "nan-for-int": ("ListWorkflows", {"max": float("nan")}, "query.max"),
    "dotdot-id": ("CancelWorkflow", {"workflow_id": ".."}, "path.workflowId"),
    "dot-id": ("DescribeWorkflow", {"workflow_id": "."}, "path.workflowId"),
    "escaping-path": (
        "ExploreDataLinkWithPath",
        {"data_link_id": "d", "path": "../../../workflow/launch"},
        "path.path",
    ),
    "inner-dotdot": (
        "DownloadDataLink",
        {"data_link_id": "d", "file_path": "a/../../b"},
        "path.filePath",
    ),
    "surrogate-query": ("ListWorkflows", {"search": "a\ud800b"}, "query.search"),
    "surrogate-path": ("DescribeWorkflow", {"workflow_id": "\udfff"}, "path.workflowId"),
    "crlf-header": (
        "GenerateDataLinkUploadUrl",
        {"data_link_id": "d", "origin": "x\r\nX-Evil: 1"},
        "header.Origin",
    ),
    "surrogate-header": (
        "GenerateDataLinkUploadUrl",
        {"data_link_id": "d", "origin": "\ud83d"},
        "header.Origin",
    ),
    "list-in-list": ("ListWorkflows", {"attributes": [["labels"]]}, "query.attributes"),
    "dict-for-list": ("ListWorkflows", {"attributes": {"a": 1}}, "query.attributes"),
    "object-for-string": ("ListWorkflows", {"search": object()}, "query.search"),
    "bytes-for-string": ("ListWorkflows", {"search": b"abc"}, "query.search"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
async def test_bad_values_raise_before_any_request(
    published: Tower, server: Server, ops: Any, case: str
) -> None:
    operation_id, arguments, where = BAD_CALLS[case]
    with pytest.raises(RequestValidationError) as info:
        build_request(ops[operation_id], BASE, arguments)
    assert where in dict(info.value.problems), info.value.problems
    with pytest.raises(RequestValidationError) as info:
        await published.call(operation_id, **arguments)
    assert info.value.operation_id == operation_id
    assert where in str(info.value)
    assert server.seen == []


BAD_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "timeout-text": ("ListWorkflows", {"timeout": "abc"}),
    "timeout-negative": ("ListWorkflows", {"timeout": -1}),
    "timeout-nan": ("ListWorkflows", {"timeout": float("nan")}),
    "deadline-text": ("ListWorkflows", {"deadline": "soon"}),
    "params-text": ("ListWorkflows", {"params": "x"}),
    "params-list": ("ListWorkflows", {"params": [("max", 1)]}),
    "validation-bogus": ("ListWorkflows", {"validation": "bogus"}),
    "validation-list": ("ListWorkflows", {"validation": ["warn"]}),
    "idempotent-text": ("ListWorkflows", {"idempotent": "yes"}),
    "idle-timeout": ("DownloadWorkflowLog", {"workflow_id": "w", "idle_timeout": "x"}),
    "non-str-name": ("ListWorkflows", {"params": {1: 2}}),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
async def test_bad_call_options_raise_before_any_request(
    published: Tower, server: Server, case: str
) -> None:
    operation_id, arguments = BAD_OPTIONS[case]
    with pytest.raises(RequestValidationError) as info:
        await published.call(operation_id, **arguments)
    assert info.value.operation_id == operation_id
    assert server.seen == []


@pytest.mark.parametrize("offset", ["abc", -1, 1.5, "\u0661"])
async def test_items_with_a_bad_offset(published: Tower, server: Server, offset: Any) -> None:
    with pytest.raises(RequestValidationError, match="offset"):
        async for _ in published.list_workflows.items(offset=offset):
            pass
    with pytest.raises(RequestValidationError, match="page_size"):
        async for _ in published.list_workflows.items(page_size="ten"):
            pass
    assert server.seen == []


def test_bodies_that_cannot_be_encoded(ops: Any) -> None:
    op = ops["CreateLabel"]
    for body in ({"name": object()}, {1j: 2}, {"n": 2**70}, {"\ud800": 1}, {"s": "\udc00"}):
        with pytest.raises(RequestValidationError) as info:
            build_request(op, BASE, {}, body=body)
        assert dict(info.value.problems).get("body"), info.value.problems
    nested: Any = []
    for _ in range(1000):
        nested = [nested]
    with pytest.raises(RequestValidationError, match="body"):
        build_request(op, BASE, {}, body={"name": nested})
    upload = ops["UploadDataset"]
    for fields in ({"file": "\ud800"}, {"fi\r\nle": b"x"}, {"file": ("a\r\n.csv", b"x")}):
        with pytest.raises(RequestValidationError, match="body"):
            build_request(upload, BASE, {"workspace_id": 1, "dataset_id": "d"}, body=fields)


async def test_a_datetime_in_a_body_goes_out_as_json(published: Tower, server: Server) -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    with contextlib.suppress(TowerError):  # the answer {} may be a deviation of the document
        await published.create_label(body={"name": "x", "value": when, "resource": True})
    assert len(server.seen) == 1


def test_non_ascii_is_percent_encoded_as_utf8(ops: Any) -> None:
    req = build_request(ops["ListPipelines"], BASE, {"search": "café", "workspace_id": 1})
    assert "search=caf%C3%A9" in req.url
    req = build_request(ops["DescribeWorkflow"], BASE, {"workflow_id": "ünï/cödé"})
    assert req.url == f"{BASE}/workflow/%C3%BCn%C3%AF%2Fc%C3%B6d%C3%A9"
    req = build_request(
        ops["ExploreDataLinkWithPath"], BASE, {"data_link_id": "d", "path": "a b/..c/é"}
    )
    assert req.url.endswith("/browse/a%20b/..c/%C3%A9")
    assert req.url.isascii()


async def test_non_ascii_searches_work_against_the_fake(tw: Tower, fake: FakePlatform) -> None:
    assert "pipelines" in await tw.list_pipelines(search="café")
    with pytest.raises(NameNotFound):
        await tw.resolve_pipeline("rnaséq")


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": "abc"},
        {"timeout": 0},
        {"rate_limit": "x"},
        {"rate_limit": -1},
        {"validation": "bogus"},
        {"endpoint": "ftp://x"},
        {"endpoint": "http://"},
        {"endpoint": "http://h:99999"},
        {"endpoint": "http://u:p@h"},
        {"endpoint": 12},
        {"token": "abc\r\nX-Evil: 1"},
        {"user_agent": "ua\n"},
        {"max_response_bytes": 0},
        {"max_response_bytes": "big"},
        {"deadline": float("inf")},
        {"stream_idle_timeout": -1},
        {"workspace": 1.5},
    ],
)
def test_session_options_are_checked_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Tower(**options)
    assert isinstance(info.value, TowerError) and isinstance(info.value, ValueError)
    if "token" in options:
        assert "abc" not in str(info.value)  # never shows the token
