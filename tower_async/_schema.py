"""OpenAPI 3.0 Schema Objects -> JSON Schema (draft 2020-12), one closure per operation.

Pure Python, no third-party imports: the result is handed to a compiled validator
(jsonschema-rs) by :mod:`tower_async.validation`.

The translation is literal, keyword by keyword, so that a compiled validator gives the
same verdict as openapi-core (openapi-schema-validator's ``OAS30Read/WriteValidator``):

* ``nullable: true`` adds ``"null"`` to the ``type`` of the *same* schema object and has
  no effect where there is no ``type`` (OpenAPI 3.0.3; the document defects this causes
  are corrected by :mod:`tower_async.patches`).
* ``readOnly`` schemas are ``false`` in requests and ``writeOnly`` schemas ``false`` in
  responses; such properties are dropped from ``required`` (as openapi-core does, looking
  at the property's own schema object).
* ``format``: ``int32``/``int64`` become ``minimum``/``maximum``; ``date-time`` is kept and
  checked (RFC 3339); ``email`` is what openapi-core (jsonschema) checks, a string with
  an ``@``; every other format is an annotation (openapi-core checks none of the others
  the Platform uses: ``binary``, ``float``, ``double``).
* draft-4 boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers.
* ``discriminator`` next to ``oneOf``/``anyOf``/``allOf`` dispatches on the property
  value (mapping, then the member schemas' own names), like openapi-core; the
  combinators themselves are then not evaluated.
* ``$ref: #/components/schemas/X`` -> ``$ref: #/$defs/X``; each component is converted
  once per variant and only the components an operation reaches are compiled for it.

Variant ``lenient`` additionally relaxes exactly the server deviations the validator
tolerates in ``warn`` mode (see ``validation.TOLERATED``): ``null`` for any property,
no ``required``, any string for string enums, digit strings for integers, string values
in maps of objects, and no ``additionalProperties: false``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal

Variant = Literal["request", "response", "lenient"]
JsonSchema = Any  # dict[str, Any] | bool

COMPONENT_PREFIX = "#/components/schemas/"
DEFS_PREFIX = "#/$defs/"
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
CHECKED_FORMATS = frozenset({"date-time"})
DIGITS_PATTERN = "^-?[0-9]+$"

_COPIED = (
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
)
_COMBINATORS = ("allOf", "oneOf", "anyOf")
# Keywords that never reject null: a schema made only of these (plus type/enum)
# accepts null once "null" is in its type.
_NULL_BLIND = frozenset(
    {
        "type",
        "enum",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "properties",
        "additionalProperties",
        "items",
        "required",
        *_COPIED,
    }
)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def allow_null(schema: JsonSchema) -> JsonSchema:
    """A schema that accepts everything ``schema`` accepts, and null."""
    if schema is False:
        return {"type": "null"}
    if schema is True or not isinstance(schema, dict):
        return schema
    if "type" in schema and set(schema) <= _NULL_BLIND:
        out = dict(schema)
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        if "null" not in types:
            out["type"] = [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    if not schema:
        return schema
    return {"anyOf": [{"type": "null"}, schema]}


class SchemaConverter:
    """Converts schemas of one (patched) document; caches each component per variant."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        components = document.get("components")
        schemas = components.get("schemas") if isinstance(components, Mapping) else None
        self._components: Mapping[str, Any] = schemas if isinstance(schemas, Mapping) else {}
        self._cache: dict[tuple[Variant, str], tuple[JsonSchema, frozenset[str]]] = {}
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def root(self, schema: Mapping[str, Any], variant: Variant) -> dict[str, Any]:
        """A self-contained JSON Schema for ``schema`` with the components it reaches."""
        refs: set[str] = set()
        converted = self._convert(schema, variant, refs)
        defs: dict[str, JsonSchema] = {}
        pending = sorted(refs)
        with self._lock:
            while pending:
                name = pending.pop()
                if name in defs:
                    continue
                key = (variant, name)
                cached = self._cache.get(key)
                if cached is None:
                    inner: set[str] = set()
                    raw = self._components.get(name, {})
                    cached = (self._convert(raw, variant, inner), frozenset(inner))
                    self._cache[key] = cached
                defs[name] = cached[0]
                pending.extend(r for r in cached[1] if r not in defs)
        root: dict[str, Any] = (
            dict(converted) if isinstance(converted, dict) else {"allOf": [converted]}
        )
        if defs:
            root["$defs"] = defs
        return root

    def resolve(self, node: Any) -> Any:
        """Follow component ``$ref`` chains in the original document."""
        seen = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 64:
            ref = node["$ref"]
            if ref.startswith(COMPONENT_PREFIX):
                node = self._components.get(_unescape(ref[len(COMPONENT_PREFIX) :]))
            else:
                node = self._local(ref)
            seen += 1
        return node

    # -- conversion -----------------------------------------------------------------------

    def _local(self, ref: str) -> Any:
        target: Any = self._document
        if not ref.startswith("#/"):
            return None
        for part in ref[2:].split("/"):
            if not isinstance(target, Mapping):
                return None
            target = target.get(_unescape(part))
        return target

    def _ref(self, ref: str, refs: set[str]) -> str:
        name = _unescape(ref[len(COMPONENT_PREFIX) :])
        refs.add(name)
        return DEFS_PREFIX + _escape(name)

    def _convert(self, node: Any, variant: Variant, refs: set[str]) -> JsonSchema:
        if not isinstance(node, Mapping):
            return True
        if variant == "request":
            if node.get("readOnly") is True:
                return False
        elif node.get("writeOnly") is True:
            return False
        lenient = variant == "lenient"
        out: dict[str, Any] = {}

        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref.startswith(COMPONENT_PREFIX):
                out["$ref"] = self._ref(ref, refs)
            else:  # a local reference outside components/schemas: inline it
                target = self._local(ref)
                inlined = self._convert(target, variant, refs)
                if not isinstance(inlined, dict):
                    return inlined
                out.update(inlined)

        kind = node.get("type")
        if isinstance(kind, str):
            types = [kind]
            if node.get("nullable") is True:
                types.append("null")
            if lenient and kind == "integer":
                types.append("string")
                out["pattern"] = DIGITS_PATTERN
            out["type"] = types[0] if len(types) == 1 else types

        enum = node.get("enum")
        if isinstance(enum, list):
            strings = all(isinstance(v, str) or v is None for v in enum)
            if lenient and strings and any(isinstance(v, str) for v in enum):
                if "type" not in out:
                    out["type"] = ["string", "null"] if None in enum else "string"
            else:
                out["enum"] = list(enum)

        fmt = node.get("format")
        if isinstance(fmt, str):
            if fmt in INT_RANGES and kind == "integer":
                low, high = INT_RANGES[fmt]
                out["minimum"] = low
                out["maximum"] = high
            elif fmt in CHECKED_FORMATS:
                out["format"] = fmt
            elif fmt == "email":  # openapi-core's (jsonschema's) check: contains "@"
                out["allOf"] = [{"pattern": "@"}]

        for bound, flag, exclusive in (
            ("minimum", "exclusiveMinimum", max),
            ("maximum", "exclusiveMaximum", min),
        ):
            value = node.get(bound)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if node.get(flag) is True:
                    out[flag] = value
                else:
                    out[bound] = exclusive(value, out[bound]) if bound in out else value

        for key in _COPIED:
            if key in node:
                out[key] = node[key]

        props = node.get("properties")
        if isinstance(props, Mapping):
            converted_props: dict[str, JsonSchema] = {}
            for name, sub in props.items():
                converted = self._convert(sub, variant, refs)
                converted_props[str(name)] = allow_null(converted) if lenient else converted
            out["properties"] = converted_props

        required = node.get("required")
        if isinstance(required, list) and not lenient:
            skip = "readOnly" if variant == "request" else "writeOnly"
            kept = []
            for name in required:
                sub = props.get(name) if isinstance(props, Mapping) else None
                if isinstance(sub, Mapping) and sub.get(skip) is True:
                    continue
                kept.append(name)
            if kept:
                out["required"] = kept

        extra = node.get("additionalProperties")
        if isinstance(extra, bool):
            if not extra and not lenient:
                out["additionalProperties"] = False
        elif isinstance(extra, Mapping):
            converted = self._convert(extra, variant, refs)
            if lenient and self._is_object(extra):
                converted = {"anyOf": [{"type": "string"}, converted]}
            out["additionalProperties"] = converted

        items = node.get("items")
        if isinstance(items, Mapping):
            out["items"] = self._convert(items, variant, refs)

        disc = node.get("discriminator")
        if isinstance(disc, Mapping) and any(k in node for k in _COMBINATORS):
            out.setdefault("allOf", []).append(self._dispatch(node, disc, refs))
        else:
            for key in _COMBINATORS:
                subs = node.get(key)
                if isinstance(subs, list):
                    converted_subs = [self._convert(s, variant, refs) for s in subs]
                    out.setdefault(key, []).extend(converted_subs)
        if isinstance(node.get("not"), Mapping):
            out["not"] = self._convert(node["not"], variant, refs)
        return out

    def _dispatch(
        self, node: Mapping[str, Any], disc: Mapping[str, Any], refs: set[str]
    ) -> dict[str, Any]:
        """openapi-core's discriminator: the value names the schema to validate against."""
        prop = str(disc.get("propertyName"))
        targets: dict[str, str] = {}
        mapping = disc.get("mapping")
        if isinstance(mapping, Mapping):
            for value, target in mapping.items():
                if isinstance(target, str) and target.startswith(COMPONENT_PREFIX):
                    targets[str(value)] = target
                elif isinstance(target, str):  # a bare schema name
                    targets[str(value)] = COMPONENT_PREFIX + target
        for key in _COMBINATORS:
            for member in node.get(key) or ():
                ref = member.get("$ref") if isinstance(member, Mapping) else None
                if isinstance(ref, str) and ref.startswith(COMPONENT_PREFIX):
                    targets.setdefault(_unescape(ref[len(COMPONENT_PREFIX) :]), ref)
        branches = [
            {"properties": {prop: {"const": value}}, "$ref": self._ref(target, refs)}
            for value, target in targets.items()
            if value
        ]
        return {"type": "object", "required": [prop], "anyOf": branches}

    def _is_object(self, schema: Any) -> bool:
        resolved = self.resolve(schema)
        return isinstance(resolved, Mapping) and resolved.get("type") == "object"
