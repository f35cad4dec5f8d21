"""Request-body and response validation against the (patched) OpenAPI document.

Design (issue #4):

* **Fast path.**  Each operation's request body schema and each (operation, status)
  response schema is converted once, lazily on first use, to JSON Schema
  (:mod:`tower_async._schema`) and compiled with jsonschema-rs.  A valid payload costs
  one compiled ``is_valid`` call; ``off`` mode, error statuses and operations without a
  JSON schema cost a comparison and a dict lookup.
* **strict** mode raises :class:`RequestValidationError` /
  :class:`ResponseValidationError` listing the JSON path of every problem; its verdict
  is openapi-core's (``tests/test_validation_differential.py``).
* **warn** mode (the default) never changes or withholds the data.  The server
  deviations in :data:`TOLERATED` are logged at DEBUG; anything else at WARNING on the
  ``tower_async.validation`` logger *and* as a :class:`TowerValidationWarning`.  Each
  distinct deviation is reported once per (operation, JSON path with array indices
  folded to ``[*]``, kind).  To keep deviating-but-tolerated payloads cheap, a second
  "lenient" validator that accepts exactly the tolerated deviations is compiled on
  demand: when it accepts the payload, errors are only enumerated if DEBUG is enabled.
* Requests are held to the document in ``strict`` and ``warn`` alike: a bad body raises
  before anything is sent.
* Error statuses (and 1xx/3xx) are never validated: they become :class:`ApiError`.
* :meth:`Validator.unmarshal` is the opt-in typed view (``date-time`` strings to
  :class:`datetime.datetime`); it is never called on the hot path.

jsonschema-rs is imported lazily, on the first compilation, so importing
``tower_async`` stays cheap.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

from ._schema import DEFS_PREFIX, SchemaConverter, Variant
from .errors import RequestValidationError, ResponseValidationError
from .operations import MULTIPART_MEDIA, Operation, _is_json

if TYPE_CHECKING:
    import jsonschema_rs

__all__ = [
    "TOLERATED",
    "Mode",
    "TowerValidationWarning",
    "Validator",
]

Mode = Literal["strict", "warn", "off"]
MODES: tuple[Mode, ...] = ("strict", "warn", "off")

logger = logging.getLogger("tower_async.validation")

#: The server deviations ``warn`` mode tolerates (logged at DEBUG), kind -> description.
#: The README's leniency table is this dict.
TOLERATED: Mapping[str, str] = {
    "null-property": "null for a property the document does not mark nullable "
    "(optional or required)",
    "missing-required": "an object without a property the document lists as required",
    "unknown-enum-value": "a string outside a string enum (a value newer than the document, "
    'e.g. compute env status "DELETING")',
    "undocumented-property": "a property the document does not list, where it declares "
    "additionalProperties: false",
    "integer-as-string": 'a string of digits where an integer is declared (task "exit": "0")',
    "string-map-value": "a string value in a map (additionalProperties) of objects",
    "body-instead-of-no-content": "a 2xx with a JSON body where only a response without "
    "content (204) is documented",
}

_DIGITS = re.compile(r"-?[0-9]+")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_MAX_REPORTED = 10_000


class TowerValidationWarning(UserWarning):
    """A response deviates from the document in a way not listed in :data:`TOLERATED`."""


class _Problem:
    __slots__ = ("kind", "message", "path", "tolerated")

    def __init__(self, path: list[str | int], kind: str, message: str, tolerated: bool) -> None:
        self.path = path
        self.kind = kind
        self.message = message
        self.tolerated = tolerated


class _Compiled:
    """Compiled validators for one schema; the lenient one is compiled on demand."""

    __slots__ = ("_converter", "_lenient", "_schema", "strict")

    def __init__(
        self, converter: SchemaConverter, schema: Mapping[str, Any], variant: Variant
    ) -> None:
        self._converter = converter
        self._schema = schema
        self._lenient: jsonschema_rs.Validator | None = None
        self.strict = _compile(converter.root(schema, variant))

    @property
    def lenient(self) -> jsonschema_rs.Validator:
        if self._lenient is None:
            self._lenient = _compile(self._converter.root(self._schema, "lenient"))
        return self._lenient


# Sentinels in the response cache.
_SKIP: Any = "skip"  # nothing to validate (not JSON, a stream, or an empty schema)
_NO_CONTENT: Any = "no-content"  # documented without a body
_UNDOCUMENTED: Any = "undocumented"  # status not documented at all


def _compile(root: Mapping[str, Any]) -> jsonschema_rs.Validator:
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(dict(root), validate_formats=True)


def _json_schema(content: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for media, media_obj in content.items():
        if _is_json(media):
            schema = media_obj.get("schema")
            if not isinstance(schema, Mapping) or not schema:
                return None
            if schema.get("format") == "binary":
                return None
            return schema
    return None


def format_path(path: Iterable[str | int], root: str = "$") -> str:
    """``["workflows", 3, "workflow", "userName"]`` -> ``$.workflows[3].workflow.userName``."""
    out = [root]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.fullmatch(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


def _folded(path: Iterable[str | int]) -> str:
    return format_path("*" if isinstance(p, int) else p for p in path).replace(".*", "[*]")


def _reached_via(evaluation_path: list[str | int]) -> str:
    """How the failing instance was reached: ``property``, ``map``, ``item`` or ``root``."""
    segments = evaluation_path[:-1]  # drop the failing keyword
    via = "root"
    i = 0
    while i < len(segments):
        keyword = segments[i]
        if keyword == "properties":
            via, i = "property", i + 2
        elif keyword in ("additionalProperties", "patternProperties"):
            via, i = "map", i + (2 if keyword == "patternProperties" else 1)
        elif keyword in ("items", "prefixItems"):
            via, i = "item", i + (2 if keyword == "prefixItems" else 1)
        elif keyword in ("allOf", "anyOf", "oneOf", "$defs"):
            i += 2
        else:  # $ref, not, if/then/else, ...
            i += 1
    return via


def _classify(error: Any) -> list[_Problem]:
    """One jsonschema-rs error -> problems (flattening anyOf/oneOf to the likeliest branch)."""
    kind = error.kind
    name = kind.name
    instance = error.instance
    path = list(error.instance_path)
    message = error.message
    if (
        instance is None
        and path
        and isinstance(path[-1], str)
        and _reached_via(list(error.evaluation_path)) == "property"
    ):
        return [_Problem(path, "null-property", message, True)]
    if name == "required":
        return [_Problem([*path, str(kind.property)], "missing-required", message, True)]
    if name == "additionalProperties":
        return [_Problem(path, "undocumented-property", message, True)]
    if (
        name == "enum"
        and isinstance(instance, str)
        and all(isinstance(v, str) or v is None for v in kind.options)
    ):
        return [_Problem(path, "unknown-enum-value", message, True)]
    if name == "type" and isinstance(instance, str):
        types = list(kind.types)
        if "integer" in types and _DIGITS.fullmatch(instance):
            return [_Problem(path, "integer-as-string", message, True)]
        if "object" in types and _reached_via(list(error.evaluation_path)) == "map":
            return [_Problem(path, "string-map-value", message, True)]
    if name in ("anyOf", "oneOf"):
        branches = [[p for e in branch for p in _classify(e)] for branch in kind.context]
        tolerated = [b for b in branches if b and all(p.tolerated for p in b)]
        if tolerated:
            return min(tolerated, key=len)
        depth = len(path)
        deeper = [b for b in branches if b and max(len(p.path) for p in b) > depth]
        if deeper:
            best = max(deeper, key=lambda b: (max(len(p.path) for p in b), -len(b)))
            return best
    return [_Problem(path, name, message, False)]


class Validator:
    """Validates request bodies and responses of one document's operations.

    Construction is cheap; validators are compiled per operation on first use and
    cached.  Safe to share between tasks and threads.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self._converter = SchemaConverter(document)
        self._requests: dict[str, Any] = {}
        self._responses: dict[tuple[str, int], Any] = {}
        self._reported: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    # -- requests -------------------------------------------------------------------------

    def validate_request_body(self, op: Operation, body: Any, mode: Mode) -> None:
        """Raise :class:`RequestValidationError` if ``body`` does not match the document.

        Held to the document in ``strict`` and ``warn`` alike; nothing happens in ``off``
        or when the operation has no JSON body schema.
        """
        if mode == "off" or body is None:
            return
        compiled = self._requests.get(op.operation_id)
        if compiled is None:
            compiled = self._request_entry(op)
        if compiled is _SKIP:
            return
        if _looks_like_files(body) and op.body is not None and MULTIPART_MEDIA in op.body.content:
            return
        if mode not in MODES:
            raise ValueError(f"validation mode must be one of {MODES}, not {mode!r}")
        if compiled.strict.is_valid(body):
            return
        problems = [
            (format_path(p.path, "body"), p.message)
            for e in compiled.strict.iter_errors(body)
            for p in _classify(e)
        ]
        raise RequestValidationError(op.operation_id, problems)

    def _request_entry(self, op: Operation) -> Any:
        schema = op.body.json_schema if op.body is not None else None
        entry: Any = _SKIP
        if schema:
            entry = _Compiled(self._converter, schema, "request")
        self._requests[op.operation_id] = entry
        return entry

    # -- responses ------------------------------------------------------------------------

    def validate_response(
        self, op: Operation, status: int, content_type: str, data: Any, mode: Mode
    ) -> None:
        """Check a decoded 2xx JSON response; see the module docstring for the modes."""
        if mode == "off" or status < 200 or status > 299:
            return
        entry = self._responses.get((op.operation_id, status))
        if entry is None:
            entry = self._response_entry(op, status)
        if entry is _SKIP:
            return
        if content_type and "json" not in content_type:
            return
        if mode not in MODES:
            raise ValueError(f"validation mode must be one of {MODES}, not {mode!r}")
        if entry is _NO_CONTENT:
            if data is None:
                return
            problems = [
                _Problem(
                    [],
                    "body-instead-of-no-content",
                    f"a {status} with a body; the document describes no content",
                    True,
                )
            ]
        elif entry is _UNDOCUMENTED:
            problems = [
                _Problem([], "undocumented-status", f"status {status} is not documented", False)
            ]
        elif data is None:
            problems = [_Problem([], "missing-body", "no body; the document describes one", False)]
        elif mode == "warn":
            # One pass in the common cases: the lenient validator accepts valid payloads and
            # those with only tolerated deviations (real servers send nulls in most pages).
            if entry.lenient.is_valid(data):
                if logger.isEnabledFor(logging.DEBUG) and not entry.strict.is_valid(data):
                    self._report(op, status, self._tolerated_problems(entry, data))
                return
            if entry.strict.is_valid(data):
                return  # a oneOf that the relaxations made ambiguous
            self._report(op, status, self._warn_problems(entry, data))
            return
        elif entry.strict.is_valid(data):
            return
        else:
            problems = [p for e in entry.strict.iter_errors(data) for p in _classify(e)]
        if mode == "strict":
            raise ResponseValidationError(
                op.operation_id,
                status,
                [(format_path(p.path), f"{p.message} [{p.kind}]") for p in problems],
                data,
            )
        self._report(op, status, problems)

    def _response_entry(self, op: Operation, status: int) -> Any:
        spec = op.responses.get(str(status))
        if spec is None:
            spec = op.response_for(status)
        entry: Any
        if spec is None:
            documented = [s for k, s in op.responses.items() if k.startswith("2")]
            if documented and all(not s.content for s in documented):
                entry = _NO_CONTENT
            else:
                entry = _UNDOCUMENTED
        elif not spec.content:
            entry = _NO_CONTENT
        elif spec.streams or not spec.is_json:
            entry = _SKIP
        else:
            schema = _json_schema(spec.content)
            entry = _SKIP if schema is None else _Compiled(self._converter, schema, "response")
        self._responses[(op.operation_id, status)] = entry
        return entry

    @staticmethod
    def _warn_problems(entry: _Compiled, data: Any) -> list[_Problem]:
        """Warn mode, invalid payload: untolerated problems, plus tolerated ones if DEBUG.

        The untolerated problems come from the lenient validator, which rejects only
        them, so a page with thousands of tolerated deviations (a null in every run)
        and one real problem costs a few validations, not thousands of classified
        errors.  A ``oneOf`` that the relaxations made ambiguous is not a problem.
        """
        problems: list[_Problem] = []
        lenient = entry.lenient
        if not lenient.is_valid(data):
            for error in lenient.iter_errors(data):
                if type(error.kind).__name__ == "OneOfMultipleValid":
                    continue  # several alternatives valid once relaxed
                problems.extend(p for p in _classify(error) if not p.tolerated)
        if logger.isEnabledFor(logging.DEBUG):
            problems.extend(Validator._tolerated_problems(entry, data))
        return problems

    @staticmethod
    def _tolerated_problems(entry: _Compiled, data: Any) -> list[_Problem]:
        """The tolerated deviations in a payload (only listed when DEBUG is on)."""
        return [p for e in entry.strict.iter_errors(data) for p in _classify(e) if p.tolerated]

    def _report(self, op: Operation, status: int, problems: list[_Problem]) -> None:
        for problem in problems:
            key = (op.operation_id, _folded(problem.path), problem.kind)
            with self._lock:
                if key in self._reported:
                    continue
                if len(self._reported) >= _MAX_REPORTED:
                    self._reported.clear()
                self._reported.add(key)
            text = (
                f"{op.operation_id} {status} response at {format_path(problem.path)}: "
                f"{problem.message} [{problem.kind}]"
            )
            if problem.tolerated:
                logger.debug("%s (tolerated server deviation)", text)
            else:
                logger.warning("%s", text)
                warnings.warn(text, TowerValidationWarning, stacklevel=3)

    # -- typed view (opt-in) --------------------------------------------------------------

    def unmarshal(self, op: Operation, status: int, data: Any) -> Any:
        """A copy of ``data`` with ``date-time`` strings as :class:`datetime` objects.

        Opt-in and never on the hot path: walks the response schema alongside the data.
        Values that do not parse are left as they are.
        """
        spec = op.response_for(status)
        schema = _json_schema(spec.content) if spec is not None else None
        if schema is None:
            return data
        root = self._converter.root(schema, "response")
        return _unmarshal(root, root, data, 0)


def _looks_like_files(body: Any) -> bool:
    if not isinstance(body, Mapping):
        return False
    return any(
        isinstance(v, (bytes, bytearray, PurePath, tuple)) or hasattr(v, "read")
        for v in body.values()
    )


def _parse_datetime(text: str) -> datetime | str:
    candidate = text.replace("t", "T").replace("z", "Z")
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    # Python 3.10's fromisoformat takes at most 6 fractional digits
    match = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", candidate)
    if match and match.group(2) and len(match.group(2)) > 7:
        candidate = match.group(1) + match.group(2)[:7] + match.group(3)
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return text


def _unmarshal(root: Mapping[str, Any], schema: Any, value: Any, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > 64:
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
        name = ref[len(DEFS_PREFIX) :].replace("~1", "/").replace("~0", "~")
        target = root.get("$defs", {}).get(name)
        value = _unmarshal(root, target, value, depth + 1)
    if isinstance(value, str):
        if schema.get("format") == "date-time":
            return _parse_datetime(value)
        for sub in _applicable(schema, value):
            value = _unmarshal(root, sub, value, depth + 1)
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(props, Mapping) or isinstance(extra, Mapping):
            out = {}
            for key, item in value.items():
                sub = props.get(key) if isinstance(props, Mapping) else None
                if sub is None and isinstance(extra, Mapping):
                    sub = extra
                out[key] = _unmarshal(root, sub, item, depth + 1) if sub is not None else item
            value = out
        for sub in _applicable(schema, value):
            value = _unmarshal(root, sub, value, depth + 1)
        return value
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            value = [_unmarshal(root, items, item, depth + 1) for item in value]
        for sub in _applicable(schema, value):
            value = _unmarshal(root, sub, value, depth + 1)
        return value
    return value


def _applicable(schema: Mapping[str, Any], value: Any) -> list[Any]:
    """allOf members, plus the anyOf/oneOf member that fits (by discriminator const)."""
    subs = list(schema.get("allOf") or ())
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            if not isinstance(branch, Mapping) or branch.get("type") == "null":
                continue
            props = branch.get("properties")
            if isinstance(props, Mapping) and len(props) == 1 and "$ref" in branch:
                prop, prop_schema = next(iter(props.items()))
                if isinstance(prop_schema, Mapping) and "const" in prop_schema:
                    if isinstance(value, Mapping) and value.get(prop) == prop_schema["const"]:
                        subs.append(branch)
                        break
                    continue
            subs.append(branch)
            break
    return subs
