"""Which operations page, and how: inferred from the document (pure, no I/O).

The Platform's OpenAPI document does not describe paging, so it is inferred per operation
from its query parameters and its success-response schema; see :mod:`tower_async.pagination`
for the rules and for iterating.  :class:`PagingTable` holds the verdicts for one document
(the session's binding owns one); :func:`detect_paging` is the uncached rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .operations import Operation, resolve_ref, schema_kind

__all__ = [
    "Paging",
    "PagingTable",
    "detect_paging",
    "paged_operations",
    "paging_for",
    "unpaged_list_operations",
]

_OFFSET_PARAMS = ("offset",)
_OFFSET_SIZE_PARAMS = ("max", "limit")
_TOKEN_PARAMS = ("nextPageToken", "pageToken", "page_token")
_TOKEN_SIZE_PARAMS = ("pageSize", "page_size", "max", "limit")
_NEXT_TOKEN_KEYS = ("nextPageToken", "next_page_token")
_TOTAL_KEYS = ("totalSize", "total")
_HAS_MORE_KEYS = ("hasMore",)
_INCLUDE_TOTAL_PARAMS = ("includeTotalSize",)
_LIST_PREFIXES = ("List", "Explore", "Search")
_PAGING_HINT_KEYS = frozenset({*_TOTAL_KEYS, *_HAS_MORE_KEYS, *_NEXT_TOKEN_KEYS})

Style = Literal["offset", "token"]


@dataclass(frozen=True, slots=True)
class Paging:
    """How one operation pages, as inferred from its parameters and response schema.

    Parameter names are the document's (``max``, ``pageSize``); keys are response properties.
    """

    style: Style
    items_key: str
    size_param: str | None = None
    offset_param: str | None = None
    token_param: str | None = None
    next_token_key: str | None = None
    total_key: str | None = None
    has_more_key: str | None = None
    include_total_param: str | None = None


def _properties(document: Mapping[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """The properties of an object schema, ``allOf`` parts merged."""
    resolved = resolve_ref(document, schema)
    out: dict[str, Any] = {}
    if not isinstance(resolved, Mapping) or depth > 16:
        return out
    for part in resolved.get("allOf") or ():
        out.update(_properties(document, part, depth + 1))
    props = resolved.get("properties")
    if isinstance(props, Mapping):
        out.update(props)
    return out


def _response_schema(op: Operation) -> Any:
    ok = op.responses.get("200") or op.success_response
    if ok is None:
        return None
    for media, media_obj in ok.content.items():
        base = media.split(";", 1)[0].strip().lower()
        if base == "application/json" or base.endswith("+json") or base == "*/*":
            return media_obj.get("schema")
    return None


def _query_params(op: Operation) -> dict[str, str]:
    """Query parameter name -> JSON kind."""
    return {p.name: p.kind for p in op.parameters if p.location == "query"}


def _first(names: tuple[str, ...], present: Mapping[str, Any]) -> str | None:
    for name in names:
        if name in present:
            return name
    return None


def _whole_list(op: Operation, document: Mapping[str, Any]) -> str:
    """`` (returns the whole list in 'key', with totalSize)`` for the reasons' sake."""
    schema = _response_schema(op)
    if schema is None:
        return ""
    props = _properties(document, schema)
    arrays = [name for name, sub in props.items() if schema_kind(document, sub)[0] == "array"]
    if len(arrays) != 1:
        return ""
    total = next((k for k in _TOTAL_KEYS if k in props), None)
    return f" (returns the whole list in '{arrays[0]}'" + (f", with {total})" if total else ")")


def detect_paging(op: Operation, document: Mapping[str, Any]) -> Paging | str:
    """The :class:`Paging` of ``op``, or why it is not paged (uncached)."""
    query = _query_params(op)
    offset_param = _first(_OFFSET_PARAMS, query)
    offset_size = _first(_OFFSET_SIZE_PARAMS, query)
    token_param = _first(_TOKEN_PARAMS, query)
    if token_param is None and (offset_param is None or offset_size is None):
        if offset_param is not None:
            return f"has '{offset_param}' but no max/limit parameter"
        if offset_size is not None:
            return f"has '{offset_size}' but no offset parameter"
        return "no max/offset or page-token parameters" + _whole_list(op, document)

    schema = _response_schema(op)
    if schema is None:
        return "no JSON success response"
    kind, _ = schema_kind(document, schema)
    if kind == "array":
        return "the response is a bare JSON array (no place for a total or a token)"
    props = _properties(document, schema)
    if not props:
        return "the response is not an object with properties"
    arrays = [name for name, sub in props.items() if schema_kind(document, sub)[0] == "array"]
    if not arrays:
        return "response has no array property"
    if len(arrays) > 1:
        return f"response has {len(arrays)} array properties ({', '.join(sorted(arrays))})"
    return _choose_style(document, query, props, arrays[0])


def _choose_style(
    document: Mapping[str, Any], query: Mapping[str, str], props: Mapping[str, Any], items_key: str
) -> Paging | str:
    """Token paging when the response carries a next-page token, else offset paging."""
    offset_param = _first(_OFFSET_PARAMS, query)
    offset_size = _first(_OFFSET_SIZE_PARAMS, query)
    token_param = _first(_TOKEN_PARAMS, query)

    def kind_of(name: str) -> str:
        return schema_kind(document, props[name])[0]

    total_key = next((k for k in _TOTAL_KEYS if k in props and kind_of(k) == "integer"), None)
    has_more_key = next((k for k in _HAS_MORE_KEYS if k in props and kind_of(k) == "boolean"), None)
    if token_param is not None:
        next_key = next((k for k in _NEXT_TOKEN_KEYS if k in props), None)
        if next_key is None:
            if offset_param is not None and offset_size is not None:
                token_param = None  # fall through to offset paging
            else:
                return f"takes '{token_param}' but the response has no next-page token"
        else:
            return Paging(
                style="token",
                items_key=items_key,
                size_param=_first(_TOKEN_SIZE_PARAMS, query),
                token_param=token_param,
                next_token_key=next_key,
                total_key=total_key,
                has_more_key=has_more_key,
            )
    include_total = next((p for p in _INCLUDE_TOTAL_PARAMS if query.get(p) == "boolean"), None)
    return Paging(
        style="offset",
        items_key=items_key,
        size_param=offset_size,
        offset_param=offset_param,
        total_key=total_key,
        has_more_key=has_more_key,
        include_total_param=include_total,
    )


def paging_for(op: Operation, document: Mapping[str, Any]) -> Paging | None:
    """How ``op`` pages, or ``None`` (uncached; a session asks its :class:`PagingTable`)."""
    found = detect_paging(op, document)
    return found if isinstance(found, Paging) else None


class PagingTable:
    """The paging verdicts of one document, computed on first use per operation."""

    __slots__ = ("_document", "_found")

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self._found: dict[str, Paging | str] = {}

    def verdict(self, op: Operation) -> Paging | str:
        """The :class:`Paging` of ``op``, or why it is not paged."""
        found = self._found.get(op.operation_id)
        if found is None:
            found = self._found[op.operation_id] = detect_paging(op, self._document)
        return found

    def get(self, op: Operation) -> Paging | None:
        found = self.verdict(op)
        return found if isinstance(found, Paging) else None


def _list_like(op: Operation, document: Mapping[str, Any]) -> bool:
    if op.method != "GET":
        return False
    oid = op.operation_id
    if oid.startswith(_LIST_PREFIXES) or oid.endswith("List"):
        return True
    query = _query_params(op)
    if any(p in query for p in (*_OFFSET_PARAMS, *_OFFSET_SIZE_PARAMS, *_TOKEN_PARAMS)):
        return True
    schema = _response_schema(op)
    return schema is not None and bool(_PAGING_HINT_KEYS & _properties(document, schema).keys())


def paged_operations(
    operations: Mapping[str, Operation], document: Mapping[str, Any]
) -> dict[str, Paging]:
    """operationId -> :class:`Paging` for every paged operation of a document."""
    table = PagingTable(document)
    out: dict[str, Paging] = {}
    for oid in operations:
        found = table.get(operations[oid])
        if found is not None:
            out[oid] = found
    return out


def unpaged_list_operations(
    operations: Mapping[str, Operation], document: Mapping[str, Any]
) -> dict[str, str]:
    """operationId -> reason, for list-like GET operations that are not paged.

    List-like: the id starts with List/Explore/Search or ends with List, or the operation
    takes a paging parameter, or its response carries a total, ``hasMore`` or a page token.
    """
    table = PagingTable(document)
    out: dict[str, str] = {}
    for oid in operations:
        op = operations[oid]
        if not _list_like(op, document):
            continue
        found = table.verdict(op)
        if isinstance(found, str):
            out[oid] = found
    return out
