"""Operations -> one typed class per operation and ``TypedOperations`` (``_typed.pyi``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..operations import CALL_OPTIONS, Operation, Parameter, bind_operations
from ..pagination import Paging, paging_for
from ._schemas import MARK, SHADOWS, SchemaTypes, py_name, resolve, union

__all__ = ["render_operations"]

#: names the generated classes' annotations use
_HEADER_NAMES = frozenset({"Any", "Literal", "Mapping", "Required", "aiohttp", "Sequence"})
_ANY_SCALAR = "str | int | float | bool"
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}

HEADER = '''\
import datetime as _dt
import typing as _t
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

import aiohttp
import typing_extensions as _te
from typing_extensions import Required, Self, TypedDict, Unpack

from tower_async import models as m
from tower_async.pagination import ItemIterator, PageIterator
from tower_async.session import BoundOperation
from tower_async.transport import StreamingBody

_T = TypeVar("_T")

class TypedItemIterator(ItemIterator, Generic[_T]):
    def __aiter__(self) -> TypedItemIterator[_T]: ...
    async def __anext__(self) -> _T: ...
    async def __aenter__(self) -> TypedItemIterator[_T]: ...

class TypedPageIterator(PageIterator, Generic[_T]):
    def __aiter__(self) -> TypedPageIterator[_T]: ...
    async def __anext__(self) -> _T: ...
    async def __aenter__(self) -> TypedPageIterator[_T]: ...

class CallOptions(TypedDict, total=False):
    """Per-call options every operation takes (see Tower._invoke)."""
    validation: Literal["strict", "warn", "off"] | None
    timeout: float | aiohttp.ClientTimeout | None
    idempotent: bool | None
    stream: bool
    params: Mapping[str, Any] | None

class PageOptions(TypedDict, total=False):
    """What .items() and .pages() take besides the operation's arguments."""
    page_size: int | None
    max_items: int | None
    prefetch: bool

class TypedOperation(BoundOperation):
    def __get__(self, obj: Any, objtype: Any = None) -> Self: ...
'''


def _param_type(types: SchemaTypes, op: Operation, p: Parameter) -> str:
    # What build_request accepts: the document's scalar types; lists of "object"/untyped
    # items (the Platform declares string lists so) take scalars; objects become pairs.
    if p.kind == "array" and p.item_kind not in _SCALARS:
        return f"_t.Sequence[{_ANY_SCALAR}]"
    if p.kind == "object":
        return f"_t.Mapping[str, {_ANY_SCALAR}] | {_ANY_SCALAR}"
    if p.kind not in _SCALARS and p.kind != "array":
        return _ANY_SCALAR
    text = types.type_of(p.schema, True, f"{op.operation_id}_{p.name}")
    if p.kind in _SCALARS and text == "_t.Any":
        text = _SCALARS[p.kind]
    resolved = resolve(types.document, p.schema)
    if isinstance(resolved, Mapping) and resolved.get("format") in ("date", "date-time"):
        text += " | _dt.date"  # sent as isoformat(); datetime is a date
    return _m(text)


def _args_class(types: SchemaTypes, op: Operation, name: str) -> str:
    lines = [f"class {name}(CallOptions, total=False):"]
    seen: set[str] = set()
    for p in op.parameters:
        pn = p.python_name
        if pn in seen or pn in CALL_OPTIONS or not pn.isidentifier():
            continue
        if pn in SHADOWS or pn in _HEADER_NAMES:  # would shadow a type name: use params={...}
            lines.append(f"    # {pn}: pass it in params={{...}}")
            continue
        seen.add(pn)
        text = _param_type(types, op, p)
        # the session fills workspaceId in from Tower(workspace=...)
        if p.required and p.name != "workspaceId":
            lines.append(f"    {pn}: Required[{text}]")
        else:
            lines.append(f"    {pn}: {union([text, 'None'])}")
    if op.body is not None:
        schema = op.body.json_schema
        if schema is not None:
            text = _m(types.type_of(schema, True, f"{op.operation_id}_body"))
        else:
            text = "Mapping[str, Any]"
        optional = f"    body: {union([text, 'None'])}"
        lines.append(f"    body: Required[{text}]" if op.body.required else optional)
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


def _m(text: str) -> str:
    """Qualify generated names with ``m.`` (models.pyi is imported as m)."""
    return text.replace(MARK, "m.")


def _return_type(types: SchemaTypes, op: Operation) -> str:
    ok = op.success_response
    if ok is None:
        return "Any"
    if not ok.content:
        return "None"
    if ok.streams:
        return "StreamingBody"
    for media, media_obj in ok.content.items():
        base = media.split(";", 1)[0].strip().lower()
        if base == "application/json" or base.endswith("+json") or base == "*/*":
            schema = media_obj.get("schema")
            text = types.type_of(schema, False, f"{op.operation_id}_response")
            return _m(text)
    return "Any"


def _item_type(types: SchemaTypes, op: Operation, paging: Paging) -> str:
    ok = op.success_response
    schema = None
    if ok is not None:
        for media_obj in ok.content.values():
            schema = media_obj.get("schema")
            break
    props, _ = types.fields(schema)
    items = props.get(paging.items_key)
    if not isinstance(items, Mapping):
        return "Any"
    resolved = resolve(types.document, items)
    item = resolved.get("items") if isinstance(resolved, Mapping) else None
    text = types.type_of(item, False, f"{op.operation_id}_item")
    return _m(text)


def _op_class(types: SchemaTypes, op: Operation, paging: Paging | None) -> str:
    base = py_name(op.operation_id)
    args, ret = f"{base}Args", _return_type(types, op)
    parts = [_args_class(types, op, args)]
    doc = f"{op.operation_id}: {op.method} {op.path}"
    if op.summary:
        doc += " -- " + " ".join(op.summary.split())
    body = [
        f"class {base}Op(TypedOperation):",
        f"    {doc!r}",
        f"    async def __call__(self, **kwargs: Unpack[{args}]) -> {ret}: ...",
    ]
    if paging is not None:
        item = _item_type(types, op, paging)
        parts.append(f"class {base}PageArgs({args}, PageOptions, total=False): ...")
        body += [
            f"    def items(self, **kwargs: Unpack[{base}PageArgs]) -> TypedItemIterator[{item}]:"
            " ...",
            f"    def pages(self, **kwargs: Unpack[{base}PageArgs]) -> TypedPageIterator[{ret}]:"
            " ...",
        ]
    parts.append("\n".join(body))
    return "\n\n".join(parts)


def render_operations(
    document: Mapping[str, Any], types: SchemaTypes, reserved: frozenset[str]
) -> tuple[str, list[str]]:
    """The text of ``_typed.pyi`` and the operations left out (their names clash)."""
    operations = bind_operations(document)
    classes: list[str] = []
    attributes: list[str] = []
    skipped: list[str] = []
    for op_id in sorted(operations):
        op = operations[op_id]
        if op.python_name in reserved:
            skipped.append(op_id)
            continue
        classes.append(_op_class(types, op, paging_for(op, document)))
        attributes.append(f"    {op.python_name}: {py_name(op.operation_id)}Op")
    towers = [
        "class TypedOperations:",
        '    """One attribute per operation of the document (generated)."""',
        *attributes,
    ]
    text = HEADER + "\n\n" + "\n\n".join(classes) + "\n\n" + "\n".join(towers) + "\n"
    return text, skipped
