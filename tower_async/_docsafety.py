"""What an OpenAPI document may do: bounded size, nesting and alias expansion, local references.

Documents come from files, download hosts, mirrors and a shared cache directory, none of
which the library controls.  Before a document is patched, validated, cached or bound it
passes these checks, each failing with a :class:`~tower_async.errors.SpecError` that names
the document and the place (a YAML line or a JSON path):

* the source is at most :attr:`DocumentLimits.max_bytes` long;
* YAML is scanned event by event before anything is built: aliases are followed only as
  far as the expanded document stays within :attr:`DocumentLimits.max_nodes` values and
  ``max_bytes`` characters of scalars, and nesting (aliases included) stays within
  :attr:`DocumentLimits.max_depth` -- so an alias bomb is refused in bounded memory;
* the built tree (from YAML, JSON, a mapping or the cache) is walked iteratively: the same
  depth and size limits, JSON-compatible values only, and every ``$ref`` is local
  (``#/...``); a document that refers to another file or URL, or moves its base URI with
  ``$id``, is refused without anything being fetched or opened.

openapi-spec-validator runs with :data:`NO_RETRIEVAL`, resolver handlers that refuse every
scheme, so even a document that reached it directly cannot make it read a file or a URL.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import SpecError

__all__ = [
    "NO_RETRIEVAL",
    "DocumentLimits",
    "caller_stacklevel",
    "check_tree",
    "scan_yaml",
]

# Keys whose string value points at another resource (a ref) or re-bases the ones below it.
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_SCALARS = (str, int, float, bool, type(None), datetime.date)  # datetime is a date
_KEYS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None), datetime.date, datetime.datetime})
_BASE_KEYS = (*_REF_KEYS, "$id")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class DocumentLimits:
    """Caps applied to every document (defaults: ~30x the published 1.181.0 document).

    ``max_bytes``: the source (file, download) and the scalars of the expanded document;
    a cache entry may be up to 4x this.  ``max_depth``: nested mappings/lists (1.181.0
    has 11).  ``max_nodes``: values in the expanded document (1.181.0 has ~50,000).
    """

    max_bytes: int = 16 * 2**20
    max_depth: int = 64
    max_nodes: int = 2_000_000


def _fail(where: str, message: str) -> NoReturn:
    raise SpecError(f"{where}: {message}")


def _yaml_events(content: bytes) -> Iterator[Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(content)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()


def scan_yaml(content: bytes, where: str, limits: DocumentLimits) -> None:
    """Refuse YAML whose expansion or nesting exceeds ``limits``, before building anything."""
    import yaml
    from yaml import events as ev

    anchors: dict[str, tuple[int, int, int]] = {}  # anchor -> (values, scalar chars, height)
    stack: list[list[Any]] = []  # open containers: [anchor, values, chars, height]
    total_nodes = total_chars = 0
    try:
        for event in _yaml_events(content):
            if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
                stack.append([event.anchor, 1, 0, 0])
                total_nodes += 1
                size = None
            elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                anchor, nodes, chars, height = stack.pop()
                size = (nodes, chars, height + 1)
                if anchor is not None:
                    anchors[anchor] = size
            elif isinstance(event, ev.ScalarEvent):
                size = (1, len(event.value), 0)
                if event.anchor is not None:
                    anchors[event.anchor] = size
                total_nodes += 1
                total_chars += size[1]
            elif isinstance(event, ev.AliasEvent):
                size = anchors.get(str(event.anchor))
                if size is None:
                    _fail(_line(where, event), f"undefined YAML alias *{event.anchor}")
                total_nodes += size[0]
                total_chars += size[1]
            else:
                continue
            if size is not None and stack:
                top = stack[-1]
                top[1] += size[0]
                top[2] += size[1]
                top[3] = max(top[3], size[2])
            _check_scan(where, event, limits, len(stack) + (size[2] if size else 0), total_nodes)
            if total_chars > limits.max_bytes:
                _fail(
                    _line(where, event),
                    f"the document expands to more than {limits.max_bytes} characters "
                    "(YAML aliases)",
                )
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: invalid YAML: {exc}") from None


def _line(where: str, event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f"{where} line {mark.line + 1}" if mark is not None else where


def _check_scan(
    where: str, event: Any, limits: DocumentLimits, depth: int, total_nodes: int
) -> None:
    if depth > limits.max_depth:
        _fail(_line(where, event), f"nested deeper than {limits.max_depth} levels")
    if total_nodes > limits.max_nodes:
        _fail(
            _line(where, event),
            f"the document expands to more than {limits.max_nodes} values (YAML aliases?)",
        )


def _ref_problem(node: Mapping[str, Any], path: str) -> str | None:
    for key in _REF_KEYS:
        ref = node.get(key)
        if isinstance(ref, str) and not ref.startswith("#"):
            return f"{path}.{key} {ref[:120]!r} refers outside the document"
    base = node.get("$id")
    if isinstance(base, str) and not base.startswith("#"):
        return f"{path}.$id {base[:120]!r} moves the base URI outside the document"
    return None


def _looks_clean(document: Any, limits: DocumentLimits) -> bool:
    """The fast pass (~2 ms for 1.181.0): True when nothing needs a closer look."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    pop, push = stack.pop, stack.append
    scalars = _SCALAR_TYPES
    while stack:
        node, depth = pop()
        nodes += len(node)
        if depth > limits.max_depth or nodes > limits.max_nodes:
            return False
        if type(node) is dict:
            for key in _BASE_KEYS:
                value = node.get(key)
                if type(value) is str and not value.startswith("#"):
                    return False
            values: Any = node.values()
        else:
            values = node
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                push((value, depth + 1))
            elif kind not in scalars:
                return False
    return True


def check_tree(document: Any, where: str, limits: DocumentLimits) -> None:
    """Walk a built document (iteratively): depth, size, JSON types, local refs only.

    A fast pass over the tree; only when it finds something does a second pass with JSON
    paths say what and where.
    """
    if type(document) is dict and _looks_clean(document, limits):
        return
    nodes = 0
    stack: list[tuple[Any, int, str]] = [(document, 1, "$")]
    while stack:
        node, depth, path = stack.pop()
        if depth > limits.max_depth:
            _fail(where, f"nested deeper than {limits.max_depth} levels at {path}")
        nodes += len(node)
        if nodes > limits.max_nodes:
            _fail(where, f"more than {limits.max_nodes} values (at {path})")
        if isinstance(node, dict):
            problem = _ref_problem(node, path)
            if problem is not None:
                _fail(where, f"{problem}; only local references (#/...) are followed")
            for key, value in node.items():
                if not isinstance(key, _KEYS):
                    _fail(where, f"{path} has a key of type {type(key).__name__}")
                if isinstance(value, (dict, list)):
                    stack.append((value, depth + 1, f"{path}.{key}"))
                elif not isinstance(value, _SCALARS):
                    _fail(where, f"{path}.{key} is a {type(value).__name__}, not a JSON value")
        else:
            for i, value in enumerate(node):
                if isinstance(value, (dict, list)):
                    stack.append((value, depth + 1, f"{path}[{i}]"))
                elif not isinstance(value, _SCALARS):
                    _fail(where, f"{path}[{i}] is a {type(value).__name__}, not a JSON value")


def _refuse(uri: str) -> NoReturn:
    raise SpecError(f"external reference {uri[:120]!r} is not followed")


class _RefuseEveryScheme(Mapping[str, Any]):
    """Resolver handlers for jsonschema-path: every scheme (``""`` too) is refused.

    jsonschema-path falls back to ``urlopen`` for a scheme missing from its handlers,
    so this mapping claims to hold all of them.
    """

    def __getitem__(self, scheme: str) -> Any:
        return _refuse

    def __contains__(self, scheme: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(("http", "https", "file", ""))

    def __len__(self) -> int:
        return 4


NO_RETRIEVAL: Mapping[str, Any] = _RefuseEveryScheme()


def caller_stacklevel() -> int:
    """``stacklevel`` for a warning issued by the caller of this function: the first frame
    outside tower-async (so a warning points at the user's ``async with Tower(...)``)."""
    frame = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
