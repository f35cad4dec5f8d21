"""Validation modes on the 1.181.0 document: every leniency rule in warn and strict mode."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from typing import Any

import pytest

from tower_async.errors import RequestValidationError, ResponseValidationError
from tower_async.operations import bind_operations
from tower_async.validation import TOLERATED, TowerValidationWarning, Validator

from .conftest import REPO
from .documents import patched_document

LOGGER = "tower_async.validation"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return patched_document("1.181.0")


@pytest.fixture(scope="module")
def ops(document: dict[str, Any]) -> Any:
    return bind_operations(document)


@pytest.fixture
def validator(document: dict[str, Any]) -> Validator:
    return Validator(document)


def workflow(**extra: Any) -> dict[str, Any]:
    base = {
        "id": "4Bx1b1F7zvr1Cs",
        "status": "RUNNING",
        "submit": "2024-05-01T12:34:56Z",
        "userName": "alice",
        "params": {"input": "s3://bucket/x.csv", "max_cpus": 4, "skip": False},
        "exitStatus": 0,
    }
    base.update(extra)
    return {"workflow": base, "workspaceId": 10}


def _cases(ops: Any) -> list[tuple[str, str, int, Any]]:
    task = {"taskId": 1, "status": "COMPLETED", "exit": 0}
    ce = {
        "computeEnv": {"id": "ce1", "name": "aws", "platform": "aws-batch", "status": "AVAILABLE"}
    }
    return [
        ("null-property", "DescribeWorkflow", 200, workflow(userName=None)),
        ("null-property", "DescribeWorkflow", 200, {"jobInfo": {"id": None}}),
        ("missing-required", "DescribeWorkflowTask", 200, {"task": {"status": "COMPLETED"}}),
        (
            "unknown-enum-value",
            "DescribeComputeEnv",
            200,
            {"computeEnv": {**ce["computeEnv"], "status": "ARCHIVING"}},  # newer than 1.181.0
        ),
        ("integer-as-string", "DescribeWorkflowTask", 200, {"task": {**task, "exit": "0"}}),
        ("string-map-value", "DescribeComputeEnv", 200, _string_map(ce)),
        ("body-instead-of-no-content", "DeleteWorkflow", 200, {"ok": True}),
    ]


def _string_map(ce: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(ce)
    out["computeEnv"]["config"] = {
        "discriminator": "aws-batch",
        "forgedResources": [{"JobQueue": "arn:aws:batch:queue"}],
    }
    return out


def test_valid_payload_is_silent_in_every_mode(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in ("strict", "warn", "off"):
            validator.validate_response(op, 200, "application/json", workflow(), mode)


def test_every_tolerated_kind_has_a_case(ops: Any) -> None:
    kinds = {case[0] for case in _cases(ops)} | {"undocumented-property"}
    assert kinds == set(TOLERATED)


@pytest.mark.parametrize("index", range(7))
def test_tolerated_deviation_is_debug_in_warn_and_raises_in_strict(
    index: int, validator: Validator, ops: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kind, op_id, status, payload = _cases(ops)[index]
    op = ops[op_id]
    before = json.dumps(payload, sort_keys=True)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TowerValidationWarning for a tolerated deviation
        validator.validate_response(op, status, "application/json", payload, "warn")
    assert json.dumps(payload, sort_keys=True) == before  # data untouched
    records = [r for r in caplog.records if r.name == LOGGER]
    assert records, "the tolerated deviation is logged at DEBUG"
    assert all(r.levelno == logging.DEBUG for r in records)
    assert any(f"[{kind}]" in r.getMessage() for r in records)

    with pytest.raises(ResponseValidationError) as info:
        validator.validate_response(op, status, "application/json", payload, "strict")
    assert info.value.operation_id == op_id
    assert any(f"[{kind}]" in message for _, message in info.value.problems)


def test_tolerated_deviation_without_debug_logging_is_silent(
    validator: Validator, ops: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    validator.validate_response(
        ops["DescribeWorkflow"], 200, "application/json", workflow(userName=None), "warn"
    )
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_undocumented_property_rule_with_additional_properties_false() -> None:
    doc = {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/thing": {
                "get": {
                    "operationId": "GetThing",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {"a": {"type": "string"}},
                                    }
                                }
                            },
                        }
                    },
                }
            }
        },
    }
    op = bind_operations(doc)["GetThing"]
    v = Validator(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.validate_response(op, 200, "application/json", {"a": "x", "b": 1}, "warn")
    with pytest.raises(ResponseValidationError, match="undocumented-property"):
        v.validate_response(op, 200, "application/json", {"a": "x", "b": 1}, "strict")


UNTOLERATED = [
    ("object for a string", workflow(userName={"name": "alice"}), "$.workflow.userName"),
    ("missing wrapper", {"id": "x", "status": "RUNNING"}, None),
    ("bad date-time", workflow(submit="yesterday"), "$.workflow.submit"),
    ("non-digit string for integer", workflow(exitStatus="zero"), "$.workflow.exitStatus"),
    ("int32 overflow", workflow(exitStatus=2**40), "$.workflow.exitStatus"),
    ("array at the top", [], "$"),
]


@pytest.mark.parametrize(
    ("label", "payload", "where"), UNTOLERATED, ids=[u[0] for u in UNTOLERATED]
)
def test_other_deviations_warn_once_and_raise_in_strict(
    label: str,
    payload: Any,
    where: str | None,
    validator: Validator,
    ops: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    op = ops["DescribeWorkflow"]
    if label == "missing wrapper":
        # a bare workflow where {"workflow": {...}} is documented: every property is
        # undocumented (allowed) and nothing is required, so it is *valid* by the document
        validator.validate_response(op, 200, "application/json", payload, "strict")
        return
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with pytest.warns(TowerValidationWarning, match="DescribeWorkflow") as record:
        validator.validate_response(op, 200, "application/json", payload, "warn")
    assert len(record) == 1
    assert where is not None and where in str(record[0].message)
    warning_logs = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning_logs) == 1 and where in warning_logs[0].getMessage()
    # the same deviation again (even at another array index) is not reported again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator.validate_response(op, 200, "application/json", payload, "warn")
    with pytest.raises(ResponseValidationError) as info:
        validator.validate_response(op, 200, "application/json", payload, "strict")
    assert where in [path for path, _ in info.value.problems]
    assert info.value.data is payload


def test_strict_lists_every_problem_path(validator: Validator, ops: Any) -> None:
    data = {
        "workflows": [
            {"workflow": {"id": "a", "status": "RUNNING", "userName": None}},
            {"workflow": {"id": "b", "status": "NOPE", "exitStatus": "x"}},
        ],
        "totalSize": "2",
    }
    with pytest.raises(ResponseValidationError) as info:
        validator.validate_response(ops["ListWorkflows"], 200, "application/json", data, "strict")
    paths = {path for path, _ in info.value.problems}
    assert paths == {
        "$.workflows[0].workflow.userName",
        "$.workflows[1].workflow.status",
        "$.workflows[1].workflow.exitStatus",
        "$.totalSize",
    }


def test_warn_reports_once_per_operation_path_and_kind(
    validator: Validator, ops: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    runs = [{"workflow": {"id": str(i), "status": "RUNNING", "userName": None}} for i in range(50)]
    for _ in range(3):
        validator.validate_response(
            ops["ListWorkflows"], 200, "application/json", {"workflows": runs}, "warn"
        )
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 1
    assert "$.workflows[0].workflow.userName" in messages[0]


def test_mixed_payload_warns_only_for_the_untolerated(
    validator: Validator, ops: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    payload = workflow(userName=None, submit="yesterday")
    with pytest.warns(TowerValidationWarning) as record:
        validator.validate_response(
            ops["DescribeWorkflow"], 200, "application/json", payload, "warn"
        )
    assert len(record) == 1 and "submit" in str(record[0].message)
    levels = {r.getMessage().split(" at ")[1].split(":")[0]: r.levelno for r in caplog.records}
    assert levels == {"$.workflow.userName": logging.DEBUG, "$.workflow.submit": logging.WARNING}


def test_off_mode_and_error_statuses_are_not_validated(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator.validate_response(op, 200, "application/json", [], "off")
        for status in (401, 403, 404, 500):
            validator.validate_response(op, status, "application/json", {"x": 1}, "strict")
            validator.validate_response(op, status, "application/json", None, "strict")
    assert not validator._responses  # nothing compiled for these


def test_undocumented_success_status_raises_in_strict(validator: Validator, ops: Any) -> None:
    with pytest.raises(ResponseValidationError, match="undocumented-status"):
        validator.validate_response(ops["DescribeWorkflow"], 201, "application/json", {}, "strict")
    with pytest.warns(TowerValidationWarning, match="not documented"):
        validator.validate_response(ops["DescribeWorkflow"], 201, "application/json", {}, "warn")


def test_204_documented_and_received_is_free(validator: Validator, ops: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator.validate_response(ops["DeleteWorkflow"], 204, "", None, "strict")


def test_non_json_responses_are_skipped(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    validator.validate_response(op, 200, "text/plain", "not json at all", "strict")


# -- requests ---------------------------------------------------------------------------------


def launch(**extra: Any) -> dict[str, Any]:
    body = {"pipeline": "nf-core/rnaseq", "computeEnvId": "ce1", "workDir": "s3://b/w"}
    body.update(extra)
    return {"launch": body}


def test_valid_request_body_passes(validator: Validator, ops: Any) -> None:
    op = ops["CreateWorkflowLaunch"]
    for mode in ("strict", "warn"):
        validator.validate_request_body(op, launch(syntaxParser=None, labelIds=[1, 2]), mode)


@pytest.mark.parametrize("mode", ["strict", "warn"])
def test_bad_request_body_raises_in_strict_and_warn(
    mode: Any, validator: Validator, ops: Any
) -> None:
    op = ops["CreateWorkflowLaunch"]
    body = launch(pipeline=1, labelIds=["x"], syntaxParser="v3")
    with pytest.raises(RequestValidationError) as info:
        validator.validate_request_body(op, body, mode)
    assert info.value.operation_id == "CreateWorkflowLaunch"
    paths = {path for path, _ in info.value.problems}
    assert paths == {"body.launch.pipeline", "body.launch.labelIds[0]", "body.launch.syntaxParser"}


def test_request_null_for_a_required_property_is_refused_in_warn(
    validator: Validator, ops: Any
) -> None:
    # null for an *optional* property is sent in warn mode (tests/test_request_leniency.py);
    # for a required one it is refused in both modes
    config = {"discriminator": "aws-batch", "region": "eu-west-1"}
    body = {"computeEnv": {"name": None, "platform": "aws-batch", "config": config}}
    for mode in ("warn", "strict"):
        with pytest.raises(RequestValidationError, match=r"body\.computeEnv\.name: null"):
            validator.validate_request_body(ops["CreateComputeEnv"], body, mode)


def test_read_only_property_in_a_request_is_rejected(validator: Validator, ops: Any) -> None:
    op = ops["CreateComputeEnv"]
    config = {"discriminator": "aws-batch", "region": "eu-west-1"}
    body = {"computeEnv": {"name": "x", "platform": "aws-batch", "config": config}}
    validator.validate_request_body(op, body, "strict")
    body["computeEnv"]["dateCreated"] = "2024-05-01T12:34:56Z"
    with pytest.raises(RequestValidationError, match=r"body\.computeEnv\.dateCreated"):
        validator.validate_request_body(op, body, "strict")


def test_request_off_mode_skips(validator: Validator, ops: Any) -> None:
    validator.validate_request_body(ops["CreateWorkflowLaunch"], {"launch": 5}, "off")
    assert not validator._requests


# -- typed view, laziness ---------------------------------------------------------------------


def test_unmarshal_is_opt_in_and_converts_date_times(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    data = workflow(submit="2024-05-01T12:34:56.123456789Z")
    data["schedConfig"] = None
    typed = validator.unmarshal(op, 200, data)
    assert typed["workflow"]["submit"] == datetime(2024, 5, 1, 12, 34, 56, 123456, timezone.utc)
    assert typed["workflow"]["params"] == data["workflow"]["params"]
    assert data["workflow"]["submit"] == "2024-05-01T12:34:56.123456789Z"  # input untouched
    listed = validator.unmarshal(
        ops["ListWorkflows"], 200, {"workflows": [workflow()], "totalSize": 1}
    )
    assert isinstance(listed["workflows"][0]["workflow"]["submit"], datetime)


def test_compiles_lazily_per_operation(validator: Validator, ops: Any) -> None:
    assert not validator._responses and not validator._requests
    validator.validate_response(
        ops["DescribeWorkflow"], 200, "application/json", workflow(), "warn"
    )
    assert list(validator._responses) == [("DescribeWorkflow", 200)]


def test_import_stays_cheap() -> None:
    code = (
        "import sys, tower_async.validation, tower_async.patches\n"
        "heavy = [m for m in ('jsonschema_rs', 'openapi_core', 'yaml', 'jsonschema') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == ""
