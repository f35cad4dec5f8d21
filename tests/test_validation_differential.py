"""Differential test: strict-mode verdicts agree with openapi-core on the 1.181.0 document.

A deterministic corpus per operation: one generated valid payload and a series of
mutations of it (null in a property, wrong types, unknown enum values, a removed
property, integer overflow, bad date-times, digit strings for integers, undocumented
properties, readOnly properties in requests, a wrong top-level type).  For every
operation with a JSON response body schema and every operation with a JSON request
body, ``Validator`` in strict mode and openapi-core (``V30ResponseDataValidator`` /
``V30RequestBodyValidator``, the same patched document) must agree on valid/invalid.

Known, documented exceptions (the generator does not produce these):

* a float with an integral value (``1.0``) where an integer is declared: openapi-core
  (draft-4 type semantics) rejects it, JSON Schema 2020-12 / jsonschema-rs accepts it.
  orjson decodes ``1.0`` as a float, so a server would have to send ``1.0`` literally.
* a discriminator value that is neither a mapping key nor the name of one of the
  ``oneOf`` members but happens to name some other component schema: openapi-core
  (implicit mapping) validates against that schema, we reject the value.

openapi-core raises ``TypeError`` (unhashable) for an object or array as discriminator
value; that crash counts as its "invalid" verdict.

Not exceptions, by construction: the dispatch on a sibling type field (``platform``
picking the ``config`` member when ``config`` has no ``discriminator``) is also compiled
into the strict validators, only to word their errors: it applies only where the
missing discriminator already makes the payload invalid, so it never changes a strict
verdict.  The request deviations warn mode sends (``validation.TOLERATED_REQUESTS``:
missing discriminator beside a sibling type field, readOnly property, null for an
optional property) are warn-mode only; strict mode refuses them, as openapi-core does.

The same loops check the warn-mode invariants: whenever the lenient validator accepts
a payload, every strict-mode problem in it is classified as a tolerated deviation (of
responses, or of requests); and the request corpus also carries, per operation with a
discriminated body, the payload without its discriminator.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tower_async.operations import Operation, bind_operations, resolve_ref
from tower_async.validation import Validator, _Compiled

from .documents import patched_document

HOST = "https://api.example.org"
DATE_TIME = "2024-05-01T12:34:56Z"
SEED = 20240501


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return patched_document("1.181.0")


@pytest.fixture(scope="module")
def oracle(document: dict[str, Any]) -> Any:
    from openapi_core import Config, OpenAPI
    from openapi_core.validation.request.validators import V30RequestBodyValidator
    from openapi_core.validation.response.validators import V30ResponseDataValidator

    config = Config(
        spec_validator_cls=None,
        request_validator_cls=V30RequestBodyValidator,
        response_validator_cls=V30ResponseDataValidator,
    )
    return OpenAPI.from_dict(copy.deepcopy(document), config=config)


# -- a small generator of valid instances of OpenAPI 3.0 schemas -----------------------------


class Generator:
    def __init__(self, document: Mapping[str, Any], direction: str, rnd: random.Random) -> None:
        self.document = document
        self.direction = direction  # "request" | "response"
        self.rnd = rnd

    def skip(self, schema: Any) -> bool:
        schema = resolve_ref(self.document, schema) if isinstance(schema, Mapping) else schema
        if not isinstance(schema, Mapping):
            return False
        flag = "readOnly" if self.direction == "request" else "writeOnly"
        return schema.get(flag) is True

    def value(self, schema: Any, depth: int = 0) -> Any:
        raw = schema
        schema = resolve_ref(self.document, schema)
        if not isinstance(schema, Mapping):
            return "x"
        disc = schema.get("discriminator")
        if isinstance(disc, Mapping) and any(k in schema for k in ("oneOf", "anyOf")):
            mapping = dict(disc.get("mapping") or {})
            key = self.rnd.choice(sorted(mapping))
            out = self.value({"$ref": mapping[key]}, depth + 1)
            if not isinstance(out, dict):
                out = {}
            out[disc["propertyName"]] = key
            return out
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for sub in schema["allOf"]:
                part = self.value(sub, depth + 1)
                if isinstance(part, dict):
                    merged.update(part)
                else:
                    return part
            base = {k: v for k, v in schema.items() if k != "allOf"}
            if base.get("properties"):
                part = self.value(base, depth + 1)
                if isinstance(part, dict):
                    merged.update(part)
            return merged
        for key in ("oneOf", "anyOf"):
            if key in schema:
                options = [
                    s
                    for s in schema[key]
                    if not (isinstance(s, Mapping) and s.get("enum") == [None])
                ]
                return self.value(options[0], depth + 1) if options else None
        if "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
            return self.rnd.choice(values) if values else None
        kind = schema.get("type")
        if kind == "string":
            if schema.get("format") == "date-time":
                return DATE_TIME
            if schema.get("pattern"):
                return "abc" if "{1,38}" in schema["pattern"] or "49" in schema["pattern"] else "a"
            low = int(schema.get("minLength", 0))
            high = int(schema.get("maxLength", 12))
            return "s" * max(low, min(high, 5))
        if kind == "integer":
            low = schema.get("minimum", 0)
            return int(low) + self.rnd.randint(0, 100)
        if kind == "number":
            return max(float(schema.get("minimum", 0)), 2.5)
        if kind == "boolean":
            return self.rnd.random() < 0.5
        if kind == "array":
            if depth > 5:
                return []
            count = self.rnd.randint(0, 2)
            items = schema.get("items", {})
            return [self.value(items, depth + 1) for _ in range(count)]
        if kind == "object" or "properties" in schema:
            out = {}
            required = set(schema.get("required") or ())
            for name, sub in (schema.get("properties") or {}).items():
                if self.skip(sub):
                    continue
                if name in required or (depth < 5 and self.rnd.random() < 0.6):
                    out[name] = self.value(sub, depth + 1)
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and depth < 5:
                out["key1"] = self.value(extra, depth + 1)
            return out
        del raw
        return "anything"


# -- mutations --------------------------------------------------------------------------------


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    root = copy.deepcopy(root)
    node = root
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    root = copy.deepcopy(root)
    node = root
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return root


def mutations(valid: Any, rnd: random.Random) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("valid", valid)]
    nodes = list(_paths(valid))
    keyed = [(p, v) for p, v in nodes if p and isinstance(p[-1], str)]
    strings = [(p, v) for p, v in keyed if isinstance(v, str)]
    ints = [(p, v) for p, v in keyed if isinstance(v, int) and not isinstance(v, bool)]
    dates = [(p, v) for p, v in strings if v == DATE_TIME]
    objects = [(p, v) for p, v in nodes if isinstance(v, dict)]
    pick = rnd.choice
    if keyed:
        p, _ = pick(keyed)
        out.append(("null", _set(valid, p, None)))
        p, _ = pick(keyed)
        out.append(("delete", _delete(valid, p)))
        p, _ = pick(keyed)
        out.append(("object-for-scalar", _set(valid, p, {"nested": True})))
    if strings:
        p, _ = pick(strings)
        out.append(("int-for-string", _set(valid, p, 123)))
        p, _ = pick(strings)
        out.append(("unknown-enum", _set(valid, p, "NOT_A_DOCUMENTED_VALUE")))
    if ints:
        p, _ = pick(ints)
        out.append(("digit-string", _set(valid, p, "17")))
        p, _ = pick(ints)
        out.append(("int32-overflow", _set(valid, p, 2**40)))
        p, _ = pick(ints)
        out.append(("int64-overflow", _set(valid, p, 2**63)))
        p, _ = pick(ints)
        out.append(("bool-for-int", _set(valid, p, True)))
    if dates:
        p, _ = pick(dates)
        out.append(("bad-date-time", _set(valid, p, pick(["2024-13-01T00:00:00Z", "yesterday"]))))
        p, _ = pick(dates)
        out.append(("date-time-no-zone", _set(valid, p, "2024-05-01T12:34:56")))
    if objects:
        p, obj = pick(objects)
        out.append(("extra-property", _set(valid, p, {**obj, "zzUndocumented": 1})))
    out.append(("array-at-root", []))
    out.append(("string-at-root", "oops"))
    return out


# -- the oracle -------------------------------------------------------------------------------


def _concrete_path(op: Operation) -> str:
    path = op.path
    for param in op.parameters:
        if param.location == "path":
            path = path.replace("{" + param.name + "}", "1")
    return path


def oracle_response_ok(oracle: Any, op: Operation, status: int, data: Any) -> bool:
    from openapi_core.testing import MockRequest, MockResponse
    from openapi_core.validation.response.exceptions import DataValidationError

    request = MockRequest(HOST, op.method.lower(), _concrete_path(op))
    response = MockResponse(json.dumps(data).encode(), status_code=status)
    try:
        oracle.validate_response(request, response)
    except DataValidationError:
        return False
    except TypeError:  # openapi-core crashes on an unhashable discriminator value
        return False
    return True


def oracle_request_ok(oracle: Any, op: Operation, body: Any) -> bool:
    from openapi_core.testing import MockRequest
    from openapi_core.validation.request.exceptions import RequestBodyValidationError

    request = MockRequest(
        HOST, op.method.lower(), _concrete_path(op), data=json.dumps(body).encode()
    )
    try:
        oracle.validate_request(request)
    except RequestBodyValidationError:
        return False
    except TypeError:  # openapi-core crashes on an unhashable discriminator value
        return False
    return True


def _json_schema(content: Mapping[str, Any]) -> Any:
    media = content.get("application/json")
    return media.get("schema") if isinstance(media, Mapping) else None


def _lenient_invariant(compiled: _Compiled, data: Any) -> None:
    if compiled.lenient.is_valid(data):
        problems = compiled.problems(data, strict=True)
        assert all(p.tolerated for p in problems), [(p.path, p.kind) for p in problems]


def test_responses_agree_with_openapi_core(document: dict[str, Any], oracle: Any) -> None:
    ops = bind_operations(document)
    validator = Validator(document)
    rnd = random.Random(SEED)
    disagreements: list[str] = []
    checked = invalid = 0
    for op_id in sorted(ops):
        op = ops[op_id]
        for status_key, spec in op.responses.items():
            if not status_key.startswith("2"):
                continue
            schema = _json_schema(spec.content)
            if not isinstance(schema, Mapping) or schema.get("format") == "binary":
                continue
            status = int(status_key)
            generator = Generator(document, "response", rnd)
            valid = generator.value(schema)
            for label, data in mutations(valid, rnd):
                expected = oracle_response_ok(oracle, op, status, data)
                entry = validator._response_entry(op, status)
                ours = bool(entry.strict.is_valid(data))
                checked += 1
                invalid += not ours
                if ours != expected:
                    disagreements.append(f"{op_id} {status} {label}: ours={ours} oracle={expected}")
                _lenient_invariant(entry, data)
    assert checked > 1500
    assert invalid > checked // 2  # the mutations do make invalid payloads
    assert not disagreements, "\n".join(disagreements[:30])


def test_request_bodies_agree_with_openapi_core(document: dict[str, Any], oracle: Any) -> None:
    ops = bind_operations(document)
    validator = Validator(document)
    rnd = random.Random(SEED + 1)
    disagreements: list[str] = []
    checked = 0
    readonly_checked = undiscriminated_checked = 0
    for op_id in sorted(ops):
        op = ops[op_id]
        if op.body is None:
            continue
        schema = _json_schema(op.body.content)
        if not isinstance(schema, Mapping):
            continue
        generator = Generator(document, "request", rnd)
        valid = generator.value(schema)
        corpus = mutations(valid, rnd)
        readonly = _with_read_only(document, schema, valid)
        if readonly is not None:
            corpus.append(("read-only-property", readonly))
            readonly_checked += 1
        undiscriminated = _without(valid, "discriminator")
        if undiscriminated != valid:
            corpus.append(("no-discriminator", undiscriminated))
            undiscriminated_checked += 1
        entry = validator._request_entry(op)
        for label, body in corpus:
            expected = oracle_request_ok(oracle, op, body)
            ours = bool(entry.strict.is_valid(body))
            checked += 1
            if ours != expected:
                disagreements.append(f"{op_id} {label}: ours={ours} oracle={expected}")
            _lenient_invariant(entry, body)
    assert checked > 500
    assert readonly_checked >= 3
    assert undiscriminated_checked >= 2
    assert not disagreements, "\n".join(disagreements[:30])


def _with_read_only(document: Mapping[str, Any], schema: Any, valid: Any) -> Any:
    """``valid`` plus a readOnly property of its top-level (or first nested) object."""
    resolved = resolve_ref(document, schema)
    if not isinstance(resolved, Mapping) or not isinstance(valid, dict):
        return None
    for name, sub in (resolved.get("properties") or {}).items():
        if isinstance(sub, Mapping) and sub.get("readOnly") is True:
            return {**valid, name: "x"}
        inner = resolve_ref(document, sub)
        if isinstance(inner, Mapping) and isinstance(valid.get(name), dict):
            for inner_name, inner_sub in (inner.get("properties") or {}).items():
                if isinstance(inner_sub, Mapping) and inner_sub.get("readOnly") is True:
                    return {**valid, name: {**valid[name], inner_name: "x"}}
    return None


def _without(node: Any, name: str) -> Any:
    """``node`` without the property ``name`` at any depth."""
    if isinstance(node, dict):
        return {k: _without(v, name) for k, v in node.items() if k != name}
    if isinstance(node, list):
        return [_without(v, name) for v in node]
    return node
