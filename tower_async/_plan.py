"""Request plans: the common call built without the general machinery (issue 17).

A :class:`RequestPlan` is made once per operation whose parameters are all in the path or
the query and which takes no request body.  :meth:`RequestPlan.build` turns keyword
arguments into the :class:`~tower_async.sansio.Request` that
:func:`~tower_async.sansio.build_request` would give, byte for byte, or returns None for
anything it does not handle on its own (an unknown or repeated name, a missing required
parameter, a value that is not a plain id, number or name...): the caller then takes the
general path, which builds the request or raises the error naming the parameter.  Plain
values (ASCII letters and digits, integers) are written directly; any other value goes
through the same serialisers as ``build_request``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .operations import Operation, Parameter
from .sansio import Request, _add_query, _serialise, base_url

__all__ = ["RequestPlan", "plan_for"]

_TEMPLATE = re.compile(r"\{([^{}]*)\}")
_SEQS = (list, tuple)


class RequestPlan:
    """The precomputed facts of one operation's plain calls."""

    __slots__ = (
        "_lookup",
        "_recipes",
        "_segments",
        "_steps",
        "method",
        "operation_id",
        "prefix",
    )

    def __init__(self, op: Operation, endpoint: str) -> None:
        self.operation_id = op.operation_id
        self.method = op.method
        self.prefix = base_url(endpoint)
        self._lookup = op.parameter
        self._recipes: dict[tuple[str, ...], tuple[_Step, ...] | Literal[False]] = {}
        # per parameter, in the document's order: (id, parameter, in the query, the
        # workspace, required, which values are written directly: flags of _direct)
        self._steps = tuple(
            (
                id(p),
                p,
                p.location == "query",
                p.name == "workspaceId",
                p.required,
                _direct(p),
            )
            for p in op.parameters
        )
        path_names = {p.name for p in op.parameters if p.location == "path"}
        segments: list[tuple[str, str, int]] = []  # (literal, then parameter name and id)
        at = 0
        for match in _TEMPLATE.finditer(op.path):
            name = match.group(1)
            if name not in path_names:
                continue  # left as it is, like build_request does
            param = next(p for p in op.parameters if p.location == "path" and p.name == name)
            segments.append((op.path[at : match.start()], name, id(param)))
            at = match.end()
        segments.append((op.path[at:], "", 0))
        self._segments = tuple(segments)

    def build(
        self,
        arguments: Mapping[str, Any],
        headers: Mapping[str, str],
        default_workspace: int | str | None,
    ) -> Request | None:
        """The request for ``arguments``, or None: take the general path."""
        keys = tuple(arguments)
        recipe = self._recipes.get(keys)
        if recipe is None:
            recipe = self._recipe(keys)
        if recipe is False:
            return None
        templated: dict[int, str] = {}
        query = ""
        for key, slot, param, in_query, workspace, required, direct in recipe:
            value: Any = None if key is None else arguments[key]
            if value is None:
                if workspace and default_workspace is not None:
                    value = default_workspace
                elif required:
                    return None
                else:
                    continue
            kind = type(value)
            if kind is int and direct & _INT:
                text = str(value)
            elif kind is str and direct & _STR and value.isascii() and value.isalnum():
                if direct & _DIGITS and not value.isdigit():
                    return None  # an integer parameter given text: the general path
                text = value
            elif in_query and param.kind == "array" and kind in _SEQS:
                pairs: list[tuple[str, str]] = []
                try:  # a list or tuple: read once, so the general path sees it unchanged
                    _add_query(param, _serialise(param, value), pairs)
                except (TypeError, ValueError):
                    return None
                query += "".join(f"&{k}={v}" for k, v in pairs)
                continue
            else:
                return None  # anything else: the general path checks and encodes it
            if in_query:
                query += f"&{param.name}={text}"
            else:
                templated[slot] = text
        url = self.prefix
        for literal, name, slot in self._segments:
            url += literal
            if slot:  # a path parameter; not given: left as it is, like build_request
                url += templated.get(slot) or "{" + name + "}"
        if query:
            url += "?" + query[1:]
        return Request(self.operation_id, self.method, url, headers)

    def _recipe(self, keys: tuple[str, ...]) -> tuple[_Step, ...] | Literal[False]:
        """The steps of calls given these argument names (memoised, up to 64 shapes), or
        False: an unknown or repeated name, or a required parameter not given."""
        by_id: dict[int, str] = {}  # by id(): a Parameter's own hash walks all its fields
        for key in keys:
            param = self._lookup(key)
            if param is None or id(param) in by_id:
                return self._remember(keys, False)
            by_id[id(param)] = key
        steps: list[_Step] = []
        for slot, param, in_query, workspace, required, direct in self._steps:
            name = by_id.get(slot)
            if name is None and not workspace:
                if required:
                    return self._remember(keys, False)
                continue
            steps.append((name, slot, param, in_query, workspace, required, direct))
        return self._remember(keys, tuple(steps))

    def _remember(
        self, keys: tuple[str, ...], recipe: tuple[_Step, ...] | Literal[False]
    ) -> tuple[_Step, ...] | Literal[False]:
        if len(self._recipes) < 64:
            self._recipes[keys] = recipe
        return recipe


# one parameter of one call shape: (argument name or None, id, parameter, in the query,
# the workspace, required, which values are written directly)
_Step = tuple[str | None, int, Parameter, bool, bool, bool, int]

_INT = 1  # an int is written as str(value)
_STR = 2  # ASCII letters and digits are written as they are
_DIGITS = 4  # ... when they are all digits


def _direct(param: Parameter) -> int:
    """Which values of ``param`` need no checking or encoding (flags above)."""
    if param.enum is not None or param.kind in ("array", "object"):
        return 0
    if param.kind in ("string", None):
        return _INT | _STR
    if param.kind == "integer":
        return _INT | _STR | _DIGITS
    if param.kind == "number":
        return _INT
    return 0


def plan_for(op: Operation, endpoint: str) -> RequestPlan | None:
    """A plan for ``op``, or None when its calls need the general path (a body, a
    header or cookie parameter, a streamed response, a path template it cannot split)."""
    if op.body is not None or op.streams:
        return None
    if any(p.location not in ("path", "query") for p in op.parameters):
        return None
    if not op.path.startswith("/"):
        return None  # build_request raises SpecError for it
    if "{" in _TEMPLATE.sub("", op.path) or not _safe_names(op):
        return None
    return RequestPlan(op, endpoint)


def _safe_names(op: Operation) -> bool:
    """Query names written as they are: only when encoding would not change them, and no
    two parameters share a location and name (build_request reports those)."""
    seen: set[tuple[str, str]] = set()
    for p in op.parameters:
        if (p.location, p.name) in seen:
            return False
        seen.add((p.location, p.name))
        if p.location == "query" and not re.fullmatch(r"[A-Za-z0-9._~-]+", p.name):
            return False
    return True
