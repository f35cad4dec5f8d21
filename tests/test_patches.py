"""The document patch table: each patch on a minimal document and on the published ones."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tower_async.operations import bind_operations
from tower_async.patches import NULL_ALTERNATIVE, PATCHES, apply_patches
from tower_async.validation import Validator

from .conftest import VERSIONS
from .documents import published_document


def doc_with(schemas: dict[str, Any], paths: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": paths or {},
        "components": {"schemas": schemas},
    }


def _get(name: str, ref: str, status: str = "200") -> dict[str, Any]:
    return {
        "get": {
            "operationId": name,
            "responses": {
                status: {
                    "description": "x",
                    "content": {"application/json": {"schema": {"$ref": ref}}},
                }
            },
        }
    }


def test_params_any_value() -> None:
    doc = doc_with(
        {
            "Workflow": {
                "type": "object",
                "properties": {
                    "params": {"type": "object", "additionalProperties": {"type": "object"}}
                },
            }
        },
        {"/w": _get("GetW", "#/components/schemas/Workflow")},
    )
    before = Validator(copy.deepcopy(doc))
    op = bind_operations(doc)["GetW"]
    data = {"params": {"input": "s3://x", "cpus": 4, "flag": True}}
    assert not before._response_entry(op, 200).strict.is_valid(data)
    assert apply_patches(doc) == ["params-any-value"]
    assert Validator(doc)._response_entry(op, 200).strict.is_valid(data)


def test_error_oneof_becomes_anyof() -> None:
    error = {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    }
    schema = {"oneOf": [{"$ref": "#/components/schemas/E1"}, {"$ref": "#/components/schemas/E2"}]}
    paths = {
        "/launch": {
            "post": {
                "operationId": "Launch",
                "responses": {
                    "200": {"description": "ok"},
                    "400": {
                        "description": "x",
                        "content": {"application/json": {"schema": schema}},
                    },
                },
            }
        }
    }
    doc = doc_with({"E1": error, "E2": copy.deepcopy(error)}, paths)
    assert apply_patches(doc) == ["error-oneof-anyof"]
    patched = doc["paths"]["/launch"]["post"]["responses"]["400"]["content"]
    assert "oneOf" not in patched["application/json"]["schema"]
    assert len(patched["application/json"]["schema"]["anyOf"]) == 2


def test_nullable_combinator_accepts_null() -> None:
    doc = doc_with(
        {
            "Sched": {"type": "object", "properties": {"cron": {"type": "string"}}},
            "Resp": {
                "type": "object",
                "properties": {
                    "sched": {"allOf": [{"$ref": "#/components/schemas/Sched"}], "nullable": True}
                },
            },
        },
        {"/r": _get("GetR", "#/components/schemas/Resp")},
    )
    op = bind_operations(doc)["GetR"]
    assert (
        not Validator(copy.deepcopy(doc))._response_entry(op, 200).strict.is_valid({"sched": None})
    )
    assert apply_patches(doc) == ["nullable-combinator"]
    sched = doc["components"]["schemas"]["Resp"]["properties"]["sched"]
    assert sched["anyOf"] == [{"$ref": "#/components/schemas/Sched"}, NULL_ALTERNATIVE]
    strict = Validator(doc)._response_entry(op, 200).strict
    assert strict.is_valid({"sched": None})
    assert strict.is_valid({"sched": {"cron": "0 * * * *"}})
    assert not strict.is_valid({"sched": {"cron": 5}})


def test_nullable_enum_gets_null() -> None:
    doc = doc_with({"E": {"type": "string", "nullable": True, "enum": ["v1", "v2"]}})
    assert apply_patches(doc) == ["nullable-enum-null"]
    assert doc["components"]["schemas"]["E"]["enum"] == ["v1", "v2", None]


def test_java_regex_is_rewritten() -> None:
    doc = doc_with(
        {
            "L": {
                "type": "object",
                "properties": {
                    "schemaName": {"type": "string", "pattern": r"[\p{Graph}&&[^/]]\p{Graph}+"},
                    "other": {"type": "string", "pattern": r"^\p{Graph}+$"},
                },
            }
        }
    )
    assert apply_patches(doc) == ["java-regex"]
    props = doc["components"]["schemas"]["L"]["properties"]
    name = re.compile(props["schemaName"]["pattern"])
    assert name.search("my-schema") and not name.fullmatch("/abs") and not name.search(" ")
    assert props["other"]["pattern"] == "^[!-~]+$"


def test_iterator_placeholders_become_arrays() -> None:
    doc = doc_with(
        {
            "Iterator_String_": {"type": "object"},
            "Iterator_Thing_": {"type": "object"},
            "Thing": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "Iterator_Real_": {"type": "object", "properties": {"x": {"type": "string"}}},
            "LogPage": {
                "type": "object",
                "properties": {"entries": {"$ref": "#/components/schemas/Iterator_String_"}},
            },
        },
        {"/log": _get("GetLog", "#/components/schemas/LogPage")},
    )
    assert apply_patches(doc) == ["iterator-as-array"]
    schemas = doc["components"]["schemas"]
    assert schemas["Iterator_String_"] == {"type": "array", "items": {"type": "string"}}
    assert schemas["Iterator_Thing_"]["items"] == {"$ref": "#/components/schemas/Thing"}
    assert "items" not in schemas["Iterator_Real_"]  # a real object is left alone
    validator = Validator(doc)
    op = bind_operations(doc)["GetLog"]
    validator.validate_response(op, 200, "application/json", {"entries": ["a", "b"]}, "strict")


@pytest.mark.parametrize("version", VERSIONS)
def test_published_documents(version: str) -> None:
    doc = published_document(version)
    applied = apply_patches(doc)
    assert set(applied) <= set(PATCHES)
    expected = {
        "1.85.0": {"nullable-combinator", "java-regex", "iterator-as-array"},
        "1.115.0": {"nullable-combinator", "iterator-as-array"},
        "1.181.0": {
            "params-any-value",
            "error-oneof-anyof",
            "nullable-combinator",
            "nullable-enum-null",
            "iterator-as-array",
        },
    }[version]
    assert set(applied) == expected
    assert apply_patches(doc) == []  # idempotent
    text = repr(doc)
    assert r"\p{" not in text
    # every response and request schema of the patched document compiles
    ops = bind_operations(doc)
    validator = Validator(doc)
    for op_id in ops:
        op = ops[op_id]
        for status in op.responses:
            if status.startswith("2"):
                validator._response_entry(op, int(status))
        validator._request_entry(op)
