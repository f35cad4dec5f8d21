"""Request plans (tower_async._plan) give byte-identical requests to build_request."""

from __future__ import annotations

from typing import Any

import pytest

from tower_async._plan import plan_for
from tower_async.errors import TowerError
from tower_async.operations import Operation, bind_operations
from tower_async.sansio import Request, build_request

from .documents import patched_document
from .synth import arguments_for

BASE = "https://tower.example:8443/api/"
HEADERS = {"Authorization": "Bearer t", "Accept": "application/json"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return patched_document("1.181.0")


@pytest.fixture(scope="module")
def operations(document: dict[str, Any]) -> list[Operation]:
    return list(bind_operations(document).values())


def plain_arguments(op: Operation, *, every: bool) -> dict[str, Any]:
    """Ids, numbers and names the plan writes itself (every parameter, or the required)."""
    out: dict[str, Any] = {}
    for i, p in enumerate(op.parameters):
        if not (every or p.required):
            continue
        name = p.python_name if i % 2 and p.python_name.isidentifier() else p.name
        if p.enum:
            out[name] = p.enum[-1]
        elif p.kind == "array":
            out[name] = [p.item_enum[0] if p.item_enum else f"a{i}", "b"]
        elif p.kind in ("integer", "number"):
            out[name] = -i if i % 3 == 0 else 10 + i
        elif p.kind == "boolean":
            out[name] = bool(i % 2)
        else:
            out[name] = f"Id{i}x" if i % 2 else str(1000 + i)
    return out


def general(op: Operation, arguments: dict[str, Any], workspace: Any) -> Request | TowerError:
    try:
        return build_request(op, BASE, arguments, headers=HEADERS, default_workspace=workspace)
    except TowerError as exc:
        return exc


def same(plan_request: Request | None, expected: Request | TowerError) -> bool:
    if plan_request is None:
        return True  # the general path takes it
    if not isinstance(expected, Request):
        return False  # the plan built what build_request refuses
    return (
        plan_request.url == expected.url
        and plan_request.method == expected.method
        and plan_request.operation_id == expected.operation_id
        and dict(plan_request.headers) == dict(expected.headers)
        and plan_request.body == expected.body
        and plan_request.multipart == expected.multipart
    )


def test_every_planned_operation_builds_what_build_request_builds(
    document: dict[str, Any], operations: list[Operation]
) -> None:
    planned = built = 0
    for op in operations:
        plan = plan_for(op, BASE)
        if plan is None:
            assert (
                op.body is not None
                or op.streams
                or any(p.location not in ("path", "query") for p in op.parameters)
            ), op.operation_id
            continue
        planned += 1
        cases = [
            plain_arguments(op, every=True),
            plain_arguments(op, every=False),
            arguments_for(op, document)[0],  # spaces, slashes, '%': the general path's
            {},
            {"unknown_argument": 1},
            {**plain_arguments(op, every=False), "workspaceId": None},
        ]
        for arguments in cases:
            for workspace in (None, 77, "12"):
                got = plan.build(arguments, HEADERS, workspace)
                expected = general(op, arguments, workspace)
                assert same(got, expected), (op.operation_id, arguments, workspace, got)
                built += got is not None
    assert planned > 100  # most operations of the document take no body
    assert built > 3 * planned  # and the plan builds their plain calls itself


@pytest.mark.parametrize(
    "value",
    ["a b", "..", ".", "", "x/y", "é", "\ud800", "-1", True, 1.5, None, ["x"], {"a": 1}, b"x"],
)
def test_unusual_path_values_take_the_general_path(operations: list[Operation], value: Any) -> None:
    op = next(o for o in operations if o.operation_id == "DescribeWorkflow")
    plan = plan_for(op, BASE)
    assert plan is not None
    got = plan.build({"workflow_id": value}, HEADERS, None)
    assert same(got, general(op, {"workflow_id": value}, None))
    if value not in ("-1",):
        assert got is None


def test_query_arrays_and_integers(operations: list[Operation]) -> None:
    op = next(o for o in operations if o.operation_id == "ListWorkflows")
    plan = plan_for(op, BASE)
    assert plan is not None
    for arguments in (
        {"workspace_id": 10, "max": 100, "offset": 0},
        {"attributes": ["labels", "optimized"], "max": "5"},
        {"attributes": ("labels",), "search": "name"},
        {"attributes": iter(["labels"])},  # an iterator: read once, by the general path
        {"max": True},
        {"max": "5x"},
        {"search": "a&b=c"},
        {"workspace_id": 10, "workspaceId": 11},
    ):
        got = plan.build(arguments, HEADERS, 5)
        assert same(got, general(op, dict(arguments), 5)), arguments
    request = plan.build({"workspace_id": 10, "max": 100}, HEADERS, None)
    assert request is not None
    assert request.url == "https://tower.example:8443/api/workflow?workspaceId=10&max=100"
