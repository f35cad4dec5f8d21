"""Synthetic, valid arguments for any bound operation (used by the binding tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tower_async.operations import Operation, Parameter, resolve_ref


def scalar_for(kind: str | None, enum: tuple[Any, ...] | None, name: str) -> Any:
    if enum:
        return enum[0]
    if kind == "integer":
        return 42
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return f"v-{name} x/y"  # a space and a slash exercise percent-encoding


def value_for(param: Parameter) -> Any:
    if param.kind == "array":
        first = scalar_for(param.item_kind, param.item_enum, param.name + "1")
        second = scalar_for(param.item_kind, param.item_enum, param.name + "2")
        return [first, second]
    if param.location == "path" and param.kind == "string" and not param.enum:
        return f"id {param.name}/part" if param.carries_path else f"id-{param.name} %"
    return scalar_for(param.kind, param.enum, param.name)


def instance_for(document: Mapping[str, Any], schema: Any, depth: int = 0) -> Any:
    """A small instance of a schema: every required property, recursively."""
    schema = resolve_ref(document, schema)
    if not isinstance(schema, Mapping) or depth > 6:
        return {}
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("allOf",):
        if key in schema:
            merged: dict[str, Any] = {}
            for sub in schema[key]:
                part = instance_for(document, sub, depth + 1)
                if isinstance(part, dict):
                    merged.update(part)
            own = {k: v for k, v in schema.items() if k != key}
            extra = instance_for(document, own, depth + 1) if own.get("properties") else {}
            if isinstance(extra, dict):
                merged.update(extra)
            return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return instance_for(document, schema[key][0], depth + 1)
    kind = schema.get("type")
    if kind == "array":
        return [instance_for(document, schema.get("items", {}), depth + 1)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        return "text"
    props = schema.get("properties") or {}
    required = [p for p in schema.get("required", []) if p in props]
    chosen = required or list(props)[:1]
    return {
        name: instance_for(document, props[name], depth + 1)
        for name in chosen
        if not resolve_ref(document, props[name]).get("readOnly")
    }


def arguments_for(op: Operation, document: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """(keyword arguments, body) for a call with every parameter given."""
    args: dict[str, Any] = {}
    for p in op.parameters:
        args[p.python_name if p.python_name.isidentifier() else p.name] = value_for(p)
    body: Any = None
    if op.body is not None:
        schema = op.body.json_schema
        if schema is not None:
            body = instance_for(document, schema)
        else:
            body = {"file": ("samples.csv", b"a,b\n1,2\n", "text/csv")}
    return args, body
