"""OpenAPI schemas -> ``TypedDict`` classes and type aliases (the text of ``models.pyi``).

Every component schema gets one *loose* name (responses: ``total=False``, every field
``X | None``, string enums ``Literal[...] | str``), and the schemas reachable from a request
body also get a *strict* name with an ``In`` suffix (``Required``/``NotRequired`` from
``required``, enums exactly).  Inline object schemas get a name made from where they appear.
A ``oneOf`` with a ``discriminator`` becomes a union of ``Literal``-tagged TypedDicts.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ..operations import resolve_ref

__all__ = ["MARK", "SHADOWS", "SchemaTypes", "py_name", "resolve", "union"]

_PREFIX = "#/components/schemas/"
_NON_IDENT = re.compile(r"\W+")
# names models.pyi itself uses
_TAKEN = frozenset({"_t", "_te"})
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
#: field names that would shadow a name the class body's annotations use
SHADOWS = frozenset({"str", "int", "float", "bool", "list", "dict", "None", "_t", "_te", "m"})
#: marks a reference to a generated name in type text (models.pyi drops it, _typed.pyi: "m.")
MARK = "\x01"


def py_name(name: str) -> str:
    """A schema name as a Python identifier: ``Action.Status`` -> ``Action_Status``."""
    text = _NON_IDENT.sub("_", name).strip("_") or "Schema"
    if text[0].isdigit():
        text = "S" + text
    if keyword.iskeyword(text) or hasattr(builtins, text) or text in _TAKEN:
        text += "_"
    return text


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``resolve_ref``, but a broken reference is an untyped node (the runtime binds it too)."""
    try:
        return resolve_ref(document, node)
    except SpecError:
        return None


def _literal(values: list[Any]) -> str | None:
    vals = [v for v in values if v is None or isinstance(v, (str, int, bool))]
    if not vals or len(vals) != len(values):
        return None
    return "_t.Literal[" + ", ".join(repr(v) for v in vals) + "]"


def union(parts: list[str]) -> str:
    out: list[str] = []
    for part in parts:
        for piece in _splitunion(part):
            if piece not in out:
                out.append(piece)
    if "_t.Any" in out:
        return "_t.Any"
    return " | ".join(out)


def _splitunion(text: str) -> list[str]:
    depth, start, pieces = 0, 0, []
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "|" and depth == 0:
            pieces.append(text[start:i].strip())
            start = i + 1
    pieces.append(text[start:].strip())
    return pieces


class SchemaTypes:
    """Renders type expressions for schemas and collects the definitions they need."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        components = document.get("components")
        schemas = components.get("schemas") if isinstance(components, Mapping) else None
        self.schemas: Mapping[str, Any] = schemas if isinstance(schemas, Mapping) else {}
        self._names: dict[str, str] = {}
        used: set[str] = set()
        for name in self.schemas:
            base = candidate = py_name(name)
            n = 2
            while candidate in used or candidate + "In" in used:
                candidate, n = f"{base}_{n}", n + 1
            used.update((candidate, candidate + "In"))
            self._names[name] = candidate
        self._used = used
        self.definitions: dict[str, str] = {}  # python name -> definition text
        self._pending: set[str] = set()

    # -- names -----------------------------------------------------------------------------

    def name_of(self, schema_name: str, strict: bool) -> str:
        """The Python name of a component schema's (strict or loose) type; defines it."""
        name = self._names[schema_name] + ("In" if strict else "")
        if name not in self.definitions and name not in self._pending:
            self._pending.add(name)
            node = self.schemas[schema_name]
            self.definitions[name] = self._define(name, node, strict, schema_name)
            self._pending.discard(name)
        return MARK + name

    def _fresh(self, hint: str) -> str:
        base = candidate = py_name(hint)
        n = 2
        while candidate in self._used:
            candidate, n = f"{base}_{n}", n + 1
        self._used.add(candidate)
        return candidate

    def define_all(self) -> None:
        """One loose type per component schema."""
        for schema_name in self.schemas:
            self.name_of(schema_name, strict=False)

    # -- expressions -----------------------------------------------------------------------

    def type_of(self, schema: Any, strict: bool, hint: str, depth: int = 0) -> str:
        """A type expression for ``schema`` (fields of responses add ``| None`` themselves)."""
        if not isinstance(schema, Mapping) or depth > 32:
            return "_t.Any"
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref.startswith(_PREFIX) and ref[len(_PREFIX) :] in self.schemas:
                text = self.name_of(ref[len(_PREFIX) :], strict)
            else:
                text = self.type_of(resolve(self.document, schema), strict, hint, depth + 1)
            return text
        text = self._expression(schema, strict, hint, depth)
        if schema.get("nullable") and text != "_t.Any":
            text = union([text, "None"])
        return text

    def _expression(self, schema: Mapping[str, Any], strict: bool, hint: str, depth: int) -> str:
        if isinstance(schema.get("discriminator"), Mapping) and schema.get("oneOf"):
            return self._taggedunion(schema, strict, hint)
        for key in ("oneOf", "anyOf"):
            subs = schema.get(key)
            if isinstance(subs, list) and subs:
                return union([self.type_of(s, strict, hint, depth + 1) for s in subs])
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in schema:
            return self.type_of(all_of[0], strict, hint, depth + 1)
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum(schema, enum, strict)
        kind = schema.get("type")
        if kind == "array":
            item = self.type_of(schema.get("items"), strict, hint + "_item", depth + 1)
            return f"_t.Sequence[{item}]" if strict else f"list[{item}]"
        if kind == "object" or "properties" in schema or isinstance(all_of, list):
            return self._object(schema, strict, hint, depth)
        return _SCALARS.get(str(kind), "_t.Any")

    def _enum(self, schema: Mapping[str, Any], enum: list[Any], strict: bool) -> str:
        literal = _literal(enum)
        base = _SCALARS.get(str(schema.get("type")))
        if base is None:  # untyped enum: the type of its values
            kinds = {type(v) for v in enum if v is not None}
            base = {
                frozenset({str}): "str",
                frozenset({int}): "int",
                frozenset({bool}): "bool",
            }.get(frozenset(kinds), "float" if kinds <= {int, float} else "_t.Any")
        if literal is None:
            return base
        return literal if strict else union([literal, base])

    def _object(self, schema: Mapping[str, Any], strict: bool, hint: str, depth: int) -> str:
        props, _ = self.fields(schema)
        if props:
            name = self._fresh(hint + ("In" if strict else ""))
            self.definitions[name] = self._typed_dict(name, schema, strict, hint)
            return MARK + name
        extra = schema.get("additionalProperties")
        value = "_t.Any"
        if isinstance(extra, Mapping) and extra:
            value = self.type_of(extra, strict, hint + "_value", depth + 1)
        return f"_t.Mapping[str, {value}]" if strict else f"dict[str, {value}]"

    # -- definitions -----------------------------------------------------------------------

    def fields(self, schema: Any, depth: int = 0) -> tuple[dict[str, Any], set[str]]:
        """Properties and required names of an object schema, ``allOf`` parts merged."""
        node = resolve(self.document, schema)
        props: dict[str, Any] = {}
        required: set[str] = set()
        if not isinstance(node, Mapping) or depth > 16:
            return props, required
        for part in node.get("allOf") or ():
            p, r = self.fields(part, depth + 1)
            props.update(p)
            required |= r
        own = node.get("properties")
        if isinstance(own, Mapping):
            props.update(own)
        req = node.get("required")
        if isinstance(req, list):
            required |= {str(x) for x in req}
        return props, required

    def _define(self, name: str, node: Any, strict: bool, schema_name: str) -> str:
        resolved = resolve(self.document, node)
        if isinstance(resolved, Mapping):
            is_object = (
                resolved.get("type") in (None, "object")
                and not resolved.get("oneOf")
                and not resolved.get("anyOf")
                and (
                    "properties" in resolved
                    or (isinstance(resolved.get("allOf"), list) and len(resolved["allOf"]) > 1)
                )
            )
            if is_object and self.fields(resolved)[0]:
                return self._typed_dict(name, resolved, strict, schema_name)
        text = self.type_of(resolved, strict, py_name(schema_name) + "_")
        return f"{name}: _te.TypeAlias = {text}"

    def _typed_dict(
        self,
        name: str,
        schema: Any,
        strict: bool,
        hint: str,
        tag: tuple[str, str] | None = None,
    ) -> str:
        props, required = self.fields(schema)
        lines: list[tuple[str, str]] = []
        for prop, sub in props.items():
            if tag is not None and prop == tag[0]:
                continue
            text = self.type_of(sub, strict, f"{hint}_{prop}")
            if strict:
                wrap = "_te.Required" if prop in required else "_te.NotRequired"
                lines.append((prop, f"{wrap}[{text}]"))
            else:
                lines.append((prop, union([text, "None"])))
        if tag is not None:
            lines.insert(0, (tag[0], f"_te.Required[_t.Literal[{tag[1]!r}]]"))
        total = "" if strict else ", total=False"
        doc = _doc(schema)
        if all(
            p.isidentifier() and not keyword.iskeyword(p) and p not in SHADOWS for p, _ in lines
        ):
            body = [f"    {p}: {t}" for p, t in lines] or ["    pass"]
            head = [f"class {name}(_te.TypedDict{total}):"]
            if doc:
                head.append(f"    {doc}")
            return "\n".join(head + body)
        items = ", ".join(f"{p!r}: {t}" for p, t in lines)
        return f"{name} = _te.TypedDict({name!r}, {{{items}}}{total})"

    def _taggedunion(self, schema: Mapping[str, Any], strict: bool, hint: str) -> str:
        disc = schema["discriminator"]
        prop = str(disc.get("propertyName", ""))
        mapping = disc.get("mapping")
        pairs: list[tuple[str, str]] = []
        if isinstance(mapping, Mapping):
            pairs = [(str(t), str(r)) for t, r in mapping.items()]
        else:
            for sub in schema["oneOf"]:
                ref = sub.get("$ref") if isinstance(sub, Mapping) else None
                if isinstance(ref, str):
                    pairs.append((ref.rsplit("/", 1)[-1], ref))
        members: list[str] = []
        for tag, ref in pairs:
            target = resolve(self.document, {"$ref": ref})
            member = self._fresh(f"{hint}_{tag}" + ("In" if strict else ""))
            self.definitions[member] = self._typed_dict(
                member, target, strict, f"{hint}_{tag}", tag=(prop, tag)
            )
            members.append(MARK + member)
        return union(members) if members else "_t.Any"


def _doc(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return ""
    text = schema.get("description") or schema.get("title")
    if not isinstance(text, str) or not text.strip():
        return ""
    line = " ".join(text.split())
    if len(line) > 90:
        line = line[:87] + "..."
    return repr(line)
