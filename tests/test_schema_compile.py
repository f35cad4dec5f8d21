"""Odd and broken schemas (issue 11): they compile, or raise SpecError before anything is sent.

Self-references are legal JSON Schema and compile ($defs + $ref); a keyword with an
invalid value, a reference that does not resolve or points outside the document, or
nesting past the limit is a :class:`SpecError` naming the operation and the JSON pointer
of the schema, raised on the first call before the request leaves.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tower_async import SpecWarning, Tower
from tower_async._schema import MAX_DEPTH
from tower_async.errors import RequestValidationError, SpecError, TowerError
from tower_async.operations import bind_operations
from tower_async.validation import Validator

from .documents import one_operation
from .tiny_server import TINY_SPEC, TOKEN, tiny_server

BASE: dict[str, Any] = yaml.safe_load(TINY_SPEC.read_text())
NEW_ITEM = "/components/schemas/NewItem"


def _variant(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def _schemas(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc["components"]["schemas"]
    return schemas


async def _create(doc: dict[str, Any], body: Any, cache: Path) -> tuple[Any, list[str]]:
    """createItem on the tiny loopback server; (the answer or error, the requests it saw)."""
    async with tiny_server() as tiny:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)  # the odd documents are reported
            async with Tower(
                spec=doc, token=TOKEN, endpoint=tiny.url, cache_dir=cache, rate_limit=None
            ) as tw:
                try:
                    result: Any = await tw.call("createItem", body=body)
                except TowerError as exc:
                    result = exc
        return result, [f"{seen.method} {seen.path}" for seen in tiny.seen]


def allof_self(doc: dict[str, Any]) -> None:
    _schemas(doc)["NewItem"]["allOf"] = [{"$ref": "#/components/schemas/NewItem"}]


def ref_to_itself(doc: dict[str, Any]) -> None:
    props = _schemas(doc)["NewItem"]["properties"]
    props["alias"] = {"$ref": "#/components/schemas/NewItem/properties/alias"}


def structureless_cycle(doc: dict[str, Any]) -> None:
    # degenerate (a schema that is only itself): compiles, and constrains nothing
    _schemas(doc)["Loop"] = {"allOf": [{"$ref": "#/components/schemas/Loop"}]}
    _schemas(doc)["NewItem"]["properties"]["loop"] = {"$ref": "#/components/schemas/Loop"}


def inline_ref_to_ancestor(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "child": {"$ref": "#/paths/~1items/post/requestBody/content/application~1json/schema"},
        },
    }


@pytest.mark.parametrize(
    "change", [allof_self, ref_to_itself, structureless_cycle, inline_ref_to_ancestor]
)
async def test_self_references_compile_and_the_call_goes_out(
    change: Callable[[dict[str, Any]], None], cache_dir: Path
) -> None:
    result, seen = await _create(_variant(change), {"name": "spanner", "kind": "tool"}, cache_dir)
    assert result == {"id": 17}
    assert seen == ["POST /items"]


async def test_a_recursive_schema_validates_at_any_depth(cache_dir: Path) -> None:
    doc = _variant(inline_ref_to_ancestor)
    body: dict[str, Any] = {"name": "root"}
    node = body
    for i in range(30):
        node["child"] = {"name": f"level-{i}"}
        node = node["child"]
    result, seen = await _create(doc, body, cache_dir)
    assert result == {"id": 17}
    node["child"] = {"name": 5}
    result, seen = await _create(doc, body, cache_dir)
    assert isinstance(result, RequestValidationError)
    [(where, _)] = result.problems
    assert where == "body" + ".child" * 31 + ".name"
    assert seen == []


def bad_pattern(doc: dict[str, Any]) -> None:
    _schemas(doc)["NewItem"]["properties"]["name"]["pattern"] = "("


def bad_min_length(doc: dict[str, Any]) -> None:
    _schemas(doc)["NewItem"]["properties"]["name"]["minLength"] = "three"


def dangling_ref(doc: dict[str, Any]) -> None:
    _schemas(doc)["NewItem"]["properties"]["kind"] = {"$ref": "#/components/schemas/Nope"}


def bad_response_pattern(doc: dict[str, Any]) -> None:
    response = doc["paths"]["/items"]["post"]["responses"]["201"]["content"]["application/json"]
    response["schema"]["properties"]["id"]["pattern"] = "[z-a]"


BROKEN = [
    (bad_pattern, "createItem request body", f"{NEW_ITEM}/properties/name/pattern", "regex"),
    (bad_min_length, "createItem request body", f"{NEW_ITEM}/properties/name/minLength", "three"),
    (dangling_ref, "createItem request body", f"{NEW_ITEM}/properties/kind", "does not resolve"),
    (
        bad_response_pattern,
        "createItem 201 response",
        "/paths/~1items/post/responses/201/content/application~1json/schema/properties/id/pattern",
        "regex",
    ),
]


@pytest.mark.parametrize(
    ("change", "where", "place", "reason"), BROKEN, ids=[b[0].__name__ for b in BROKEN]
)
async def test_broken_schemas_raise_spec_error_before_anything_is_sent(
    change: Callable[[dict[str, Any]], None], where: str, place: str, reason: str, cache_dir: Path
) -> None:
    result, seen = await _create(_variant(change), {"name": "spanner"}, cache_dir)
    assert isinstance(result, SpecError), result
    assert str(result).startswith(f"{where}: the schema at {place} ")
    assert reason in str(result)
    assert seen == []


def odd_names(doc: dict[str, Any]) -> None:
    schemas = _schemas(doc)
    schemas["We%20ird"] = schemas.pop("Kind")
    schemas["a/b~c d"] = {"type": "string", "maxLength": 3}
    props = schemas["NewItem"]["properties"]
    props["kind"] = {"$ref": "#/components/schemas/We%20ird"}
    props["code"] = {"$ref": "#/components/schemas/a~1b~0c%20d"}  # pointer-escaped, then %-encoded


async def test_odd_component_names_are_escaped_and_validated(cache_dir: Path) -> None:
    doc = _variant(odd_names)
    result, seen = await _create(doc, {"name": "spanner", "kind": "part", "code": "abc"}, cache_dir)
    assert result == {"id": 17} and seen == ["POST /items"]
    result, seen = await _create(
        doc, {"name": "spanner", "kind": "bolt", "code": "abcd"}, cache_dir
    )
    assert isinstance(result, RequestValidationError)
    assert {where for where, _ in result.problems} == {"body.kind", "body.code"}
    assert seen == []


def test_external_refs_and_deep_nesting_are_spec_errors() -> None:
    external = {"$ref": "http://127.0.0.1:9/other.yaml#/Thing"}
    deep: dict[str, Any] = {"type": "object"}
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node["properties"] = {"a": {"type": "object"}}
        node = node["properties"]["a"]
    for schema, reason in ((external, "does not point inside this document"), (deep, "nested")):
        doc = one_operation("CreateThing", schema)
        op = bind_operations(doc)["CreateThing"]
        with pytest.raises(SpecError, match=reason) as info:
            Validator(doc).validate_request_body(op, {"a": {}}, "warn")
        assert str(info.value).startswith("CreateThing request body: the schema at /paths/")


def test_off_mode_compiles_nothing() -> None:
    doc = one_operation("CreateThing", {"type": "string", "pattern": "("})
    op = bind_operations(doc)["CreateThing"]
    validator = Validator(doc)
    validator.validate_request_body(op, "x", "off")
    with pytest.raises(SpecError, match="/paths/~1things/post/requestBody/content/"):
        validator.validate_request_body(op, None, "warn")  # also without a body
