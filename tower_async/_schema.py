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
  combinators themselves are then not evaluated.  The dispatch is a chain of
  ``if``/``then`` so that an error inside the chosen member is reported where it is.
* Every local ``$ref`` becomes ``$ref: #/$defs/<pointer>``, the ``$defs`` key being the
  target's JSON pointer in the document (JSON-pointer escaped, then percent-encoded in
  the reference), so references into a schema, odd component names and reference
  cycles (a tree of nodes) all compile; each target is converted once per variant and
  only the targets an operation reaches are compiled for it.

Variant ``lenient`` additionally relaxes exactly the server deviations the validator
tolerates in ``warn`` mode (see ``validation.TOLERATED``): ``null`` for any property,
no ``required``, any string for string enums, digit strings for integers, string values
in maps of objects, and no ``additionalProperties: false``.  Variant
``request-lenient`` relaxes exactly the request deviations of
``validation.TOLERATED_REQUESTS``: ``null`` for an optional property, a readOnly
property, and a missing ``discriminator`` where a sibling property tells the type.

A sibling type field is found from the document: an object with a property whose schema
is a discriminated ``oneOf`` (``config``) and another property whose string enum is made
of the discriminator's values (``platform``).  Where neither the discriminator nor a
type field tells the member, the lenient variants accept the members that fit (an
``anyOf``), so an error names the closest one.  Objects marked with the key
:data:`MARK` carry what the validator needs to word its messages.

Anything in a schema that cannot be converted (an unresolvable or external ``$ref``,
nesting deeper than :data:`MAX_DEPTH`) raises :class:`SchemaProblem` naming the place.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote

Variant = Literal["request", "response", "lenient", "request-lenient"]
JsonSchema = Any  # dict[str, Any] | bool

COMPONENT_PREFIX = "#/components/schemas/"
DEFS_PREFIX = "#/$defs/"
#: The keyword of the annotations this module leaves for the validator's messages.
MARK = "x-tower"
#: Deepest schema nesting converted (a deeper one is a SchemaProblem, not a crash).
MAX_DEPTH = 100
_UNTYPED = "untyped:"  # $defs key prefix: a discriminated schema reached beside its type field
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


class SchemaProblem(Exception):
    """A schema of the document cannot be converted; ``place`` is its JSON pointer."""

    def __init__(self, place: str, reason: str) -> None:
        self.place = place
        self.reason = reason
        super().__init__(f"{place or '/'}: {reason}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


escape_token = _escape  #: one JSON-pointer token: ``~`` -> ``~0``, ``/`` -> ``~1``
unescape_token = _unescape  #: the inverse: ``~1`` -> ``/``, ``~0`` -> ``~``


def def_ref(key: str) -> str:
    """The ``$ref`` to ``$defs[key]``: JSON-pointer escaped, then percent-encoded."""
    return DEFS_PREFIX + quote(_escape(key), safe="")


def def_key(ref: str) -> str | None:
    """The ``$defs`` key a ``$ref`` made by :func:`def_ref` points to."""
    if not ref.startswith(DEFS_PREFIX):
        return None
    return _unescape(unquote(ref[len(DEFS_PREFIX) :]))


def def_place(key: str) -> str:
    """The document's JSON pointer for a ``$defs`` key."""
    return key[len(_UNTYPED) :] if key.startswith(_UNTYPED) else key


def schema_name(key: str) -> str:
    """``/components/schemas/AwsBatchConfig`` -> ``AwsBatchConfig`` (else the pointer)."""
    place = def_place(key)
    head, _, last = place.rpartition("/")
    return _unescape(last) if head == "/components/schemas" else place


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


def _direct_ref(schema: Any) -> str | None:
    """``{$ref: X}`` or ``{allOf: [{$ref: X}]}`` -> ``X``."""
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    subs = schema.get("allOf")
    if ref is None and isinstance(subs, list) and len(subs) == 1:
        ref = subs[0].get("$ref") if isinstance(subs[0], Mapping) else None
    return ref if isinstance(ref, str) else None


def _chain(prop: str, targets: Mapping[str, str], wrap: str | None) -> list[dict[str, Any]]:
    """One ``if prop == value then <target>`` per value (``wrap``: the target's property)."""
    chain = []
    for value, key in targets.items():
        target: dict[str, Any] = {"$ref": def_ref(key)}
        chain.append(
            {
                "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                "then": {"properties": {wrap: target}} if wrap else target,
                MARK: {"branch": schema_name(key), "by": prop, "value": value},
            }
        )
    return chain


def _documented(targets: Mapping[str, str]) -> list[str]:
    """The values worth listing in a message: without the implicit member names."""
    explicit = [v for v, key in targets.items() if v != schema_name(key)]
    return explicit or list(targets)


_Sibling = tuple[str, str, str, dict[str, str]]  # type field, discriminator, key, targets


class SchemaConverter:
    """Converts schemas of one (patched) document; caches each target per variant."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self._cache: dict[tuple[Variant, str], tuple[JsonSchema, frozenset[str]]] = {}
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def root(self, schema: Mapping[str, Any], variant: Variant, at: str = "") -> dict[str, Any]:
        """A self-contained JSON Schema for ``schema`` (at pointer ``at``) and its targets."""
        refs: set[str] = set()
        converted = self._convert(schema, variant, refs, at, 0)
        defs: dict[str, JsonSchema] = {}
        pending = sorted(refs)
        with self._lock:
            while pending:
                key = pending.pop()
                if key in defs:
                    continue
                cached = self._cache.get((variant, key))
                if cached is None:
                    inner: set[str] = set()
                    place = def_place(key)
                    node = self._locate("#" + place, place)[1]
                    untyped = key.startswith(_UNTYPED)
                    cached = (
                        self._convert(node, variant, inner, place, 0, untyped),
                        frozenset(inner),
                    )
                    self._cache[(variant, key)] = cached
                defs[key] = cached[0]
                pending.extend(r for r in cached[1] if r not in defs)
        root: dict[str, Any] = (
            dict(converted) if isinstance(converted, dict) else {"allOf": [converted]}
        )
        if defs:
            root["$defs"] = defs
        return root

    def resolve(self, node: Any) -> Any:
        """Follow ``$ref`` chains in the original document (None when one does not resolve)."""
        seen = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 64:
            try:
                node = self._locate(node["$ref"], "")[1]
            except SchemaProblem:
                return None
            seen += 1
        return node

    # -- references -----------------------------------------------------------------------

    def _locate(self, ref: str, at: str) -> tuple[str, Any]:
        """``#/a/b~1c`` -> (canonical pointer, node); tokens are tried as written, then
        percent-decoded (a URI fragment)."""
        if not ref.startswith("#/"):
            raise SchemaProblem(at, f"$ref {ref!r} does not point inside this document")
        node: Any = self._document
        tokens: list[str] = []
        for raw in ref[2:].split("/"):
            token = _unescape(raw)
            if isinstance(node, Mapping) and token not in node and "%" in raw:
                token = _unescape(unquote(raw))
            if isinstance(node, Mapping) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isascii() and token.isdigit():
                if int(token) >= len(node):
                    raise SchemaProblem(at, f"$ref {ref!r} does not resolve in the document")
                node = node[int(token)]
            else:
                raise SchemaProblem(at, f"$ref {ref!r} does not resolve in the document")
            tokens.append(token)
        return "/" + "/".join(_escape(t) for t in tokens), node

    def _ref(self, ref: str, refs: set[str], at: str, prefix: str = "") -> str:
        key = prefix + self._locate(ref, at)[0]
        refs.add(key)
        return def_ref(key)

    # -- conversion -----------------------------------------------------------------------

    def _convert(
        self,
        node: Any,
        variant: Variant,
        refs: set[str],
        at: str,
        depth: int,
        untyped: bool = False,
    ) -> JsonSchema:
        if depth > MAX_DEPTH:
            raise SchemaProblem(at, f"schemas nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, Mapping):
            return True
        if variant == "request":
            if node.get("readOnly") is True:
                return False
        elif variant != "request-lenient" and node.get("writeOnly") is True:
            return False
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            out["$ref"] = self._ref(ref, refs, at)
        self._scalar_keywords(node, variant == "lenient", out)
        self._object_keywords(node, variant, refs, at, depth, out)
        items = node.get("items")
        if isinstance(items, Mapping):
            out["items"] = self._convert(items, variant, refs, at + "/items", depth + 1)
        family = self._family(node, at, variant not in ("request", "response"))
        if family is not None:
            out.setdefault("allOf", []).append(self._dispatch(family, variant, refs, untyped))
        else:
            for key in _COMBINATORS:
                subs = node.get(key)
                if isinstance(subs, list):
                    out.setdefault(key, []).extend(
                        self._convert(sub, variant, refs, f"{at}/{key}/{i}", depth + 1)
                        for i, sub in enumerate(subs)
                    )
        if isinstance(node.get("not"), Mapping):
            out["not"] = self._convert(node["not"], variant, refs, at + "/not", depth + 1)
        return out

    @staticmethod
    def _scalar_keywords(node: Mapping[str, Any], lenient: bool, out: dict[str, Any]) -> None:
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

    def _object_keywords(
        self,
        node: Mapping[str, Any],
        variant: Variant,
        refs: set[str],
        at: str,
        depth: int,
        out: dict[str, Any],
    ) -> None:
        props = node.get("properties")
        kept = self._required(node, variant)
        if kept and variant != "lenient":
            out["required"] = kept
        if isinstance(props, Mapping):
            siblings = self._siblings(props, at)
            converted_props: dict[str, JsonSchema] = {}
            for name, sub in props.items():
                name = str(name)
                if name in siblings and variant in ("lenient", "request-lenient"):
                    converted = {"$ref": def_ref(_UNTYPED + siblings[name][2])}
                    refs.add(_UNTYPED + siblings[name][2])
                else:
                    place = f"{at}/properties/{_escape(name)}"
                    converted = self._convert(sub, variant, refs, place, depth + 1)
                if variant == "lenient" or (variant == "request-lenient" and name not in kept):
                    converted = allow_null(converted)
                converted_props[name] = converted
            out["properties"] = converted_props
            for name, sibling in siblings.items():
                out.setdefault("allOf", []).append(self._by_sibling(name, sibling, variant))

        extra = node.get("additionalProperties")
        if isinstance(extra, bool):
            if not extra and variant != "lenient":
                out["additionalProperties"] = False
        elif isinstance(extra, Mapping):
            place = at + "/additionalProperties"
            extra_schema = self._convert(extra, variant, refs, place, depth + 1)
            if variant == "lenient" and self._is_object(extra):
                extra_schema = {"anyOf": [{"type": "string"}, extra_schema]}
            out["additionalProperties"] = extra_schema

    @staticmethod
    def _required(node: Mapping[str, Any], variant: Variant) -> list[Any]:
        """``required`` without the properties that must not be sent (readOnly) / returned."""
        required = node.get("required")
        if not isinstance(required, list):
            return []
        props = node.get("properties")
        skip = "readOnly" if variant in ("request", "request-lenient") else "writeOnly"
        kept = []
        for name in required:
            sub = props.get(name) if isinstance(props, Mapping) and isinstance(name, str) else None
            if isinstance(sub, Mapping) and sub.get(skip) is True:
                continue
            kept.append(name)
        return kept

    # -- discriminators -------------------------------------------------------------------

    def _family(
        self, node: Mapping[str, Any], at: str, with_enums: bool
    ) -> tuple[str, str, dict[str, str]] | None:
        """(discriminator property, family name, value -> $defs key) of a discriminated
        ``oneOf``/``anyOf``/``allOf``: the mapping, then the members' own names (and, with
        ``with_enums``, the values the members' discriminator property allows)."""
        disc = node.get("discriminator")
        if not isinstance(disc, Mapping) or not isinstance(disc.get("propertyName"), str):
            return None
        prop = disc["propertyName"]
        targets: dict[str, str] = {}
        mapping = disc.get("mapping")
        for value, target in mapping.items() if isinstance(mapping, Mapping) else ():
            if isinstance(target, str) and str(value):
                ref = target if target.startswith("#") else COMPONENT_PREFIX + target
                place = f"{at}/discriminator/mapping/{_escape(str(value))}"
                targets[str(value)] = self._locate(ref, place)[0]
        members = 0
        for combinator in _COMBINATORS:
            subs = node.get(combinator)
            for i, member in enumerate(subs if isinstance(subs, list) else ()):
                member_ref = member.get("$ref") if isinstance(member, Mapping) else None
                if not isinstance(member_ref, str):
                    continue
                members += 1
                key, resolved = self._locate(member_ref, f"{at}/{combinator}/{i}")
                if key.count("/") == 3 and key.startswith("/components/schemas/"):
                    targets.setdefault(schema_name(key), key)
                for value in self._own_values(resolved, prop) if with_enums else ():
                    targets.setdefault(value, key)
        if not members or not targets:
            return None
        return prop, schema_name(at) if at else "schema", targets

    def _own_values(self, member: Any, prop: str) -> list[str]:
        props = member.get("properties") if isinstance(member, Mapping) else None
        sub = self.resolve(props.get(prop)) if isinstance(props, Mapping) else None
        if isinstance(sub, Mapping) and isinstance(sub.get("const"), str):
            return [sub["const"]]
        enum = sub.get("enum") if isinstance(sub, Mapping) else None
        return [v for v in enum if isinstance(v, str)] if isinstance(enum, list) else []

    def _dispatch(
        self,
        family: tuple[str, str, dict[str, str]],
        variant: Variant,
        refs: set[str],
        untyped: bool,
    ) -> dict[str, Any]:
        """openapi-core's discriminator: the value names the schema to validate against."""
        prop, name, targets = family
        refs.update(targets.values())
        mark = {"discriminator": prop, "family": name, "values": _documented(targets)}
        out: dict[str, Any] = {"type": "object", "allOf": _chain(prop, targets, None), MARK: mark}
        if variant != "lenient":  # an unknown value is tolerated in responses only
            out["properties"] = {prop: {"enum": list(targets), MARK: mark}}
            if not untyped:
                out["required"] = [prop]
        if variant in ("lenient", "request-lenient") and not untyped:
            # no discriminator and no type field beside it: the members that fit
            members = {
                key: {"$ref": def_ref(key), MARK: {"branch": schema_name(key)}}
                for key in targets.values()
            }
            out["if"] = {"not": {"required": [prop]}}
            out["then"] = {"anyOf": list(members.values())}
        return out

    def _siblings(self, props: Mapping[str, Any], at: str) -> dict[str, _Sibling]:
        """Properties holding a discriminated schema whose type a sibling property tells:
        ``{"config": ("platform", "discriminator", <key>, {"aws-batch": <key>, ...})}``."""
        out: dict[str, _Sibling] = {}
        for name, sub in props.items():
            ref = _direct_ref(sub)
            try:
                key, target = self._locate(ref, at) if ref else ("", None)
                family = self._family(target, key, True) if isinstance(target, Mapping) else None
            except SchemaProblem:
                family = None
            if family is None:
                continue
            best: list[tuple[int, str, list[str]]] = []
            for other, other_sub in props.items():
                values = self._string_enum(other_sub) if other != name else []
                common = [v for v in values if v in family[2]]
                if len(common) >= 2 and 2 * len(common) >= len(values):
                    best.append((len(common), str(other), common))
            best.sort(reverse=True)
            if best and (len(best) == 1 or best[0][0] > best[1][0]):
                _, field, common = best[0]
                out[str(name)] = (field, family[0], key, {v: family[2][v] for v in common})
        return out

    def _string_enum(self, schema: Any) -> list[str]:
        ref = _direct_ref(schema)
        resolved = self.resolve({"$ref": ref}) if ref else schema
        enum = resolved.get("enum") if isinstance(resolved, Mapping) else None
        if not isinstance(enum, list):
            return []
        return [v for v in enum if isinstance(v, str)]

    @staticmethod
    def _by_sibling(prop: str, sibling: _Sibling, variant: Variant) -> dict[str, Any]:
        """``prop`` without its discriminator: the sibling type field picks the member.

        In the strict variants ``prop`` still requires its discriminator, so this cannot
        change their verdict; it makes the errors name the real problems in the member.
        """
        field, disc, key, targets = sibling
        mark = {
            "sibling": field,
            "of": prop,
            "family": schema_name(key),
            "discriminator": disc,
            "values": _documented(targets),
        }
        then: dict[str, Any] = {"allOf": _chain(field, targets, prop), MARK: mark}
        if variant != "lenient":  # (strict: only reached when the discriminator is missing)
            then["required"] = [field]
            then["properties"] = {field: {"enum": list(targets), MARK: mark}}
        lacks = {"type": "object", "not": {"required": [disc]}}
        return {"if": {"properties": {prop: lacks}, "required": [prop]}, "then": then}

    def _is_object(self, schema: Any) -> bool:
        resolved = self.resolve(schema)
        return isinstance(resolved, Mapping) and resolved.get("type") == "object"
