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
* **warn-mode sampling** (responses only; ``strict`` checks every response).  Each
  response *shape*, an (operation, status) pair, is validated on every response until
  :data:`WARN_SAMPLE_AFTER` responses in a row were clean; from then on every
  :data:`WARN_SAMPLE_EVERY`-th response of that shape is validated (a deterministic
  count, not chance).  A deviation found puts the shape back to checking every response.
  So a deviation that persists is reported within ``WARN_SAMPLE_EVERY`` calls of its
  shape; one that shows in a single response between two samples may go unreported.
  Media-type, empty-body, no-content and undocumented-status checks are never sampled.
  ``Validator.sample_every = 1`` (or ``forget_reports()`` per shape) restores full checking.
* Requests: ``strict`` holds them to the document.  ``warn`` sends, unchanged, a body
  whose only deviations are those in :data:`TOLERATED_REQUESTS` (what the Platform
  accepts and real tools send), reporting each once per (operation, path, kind) at
  WARNING and as a :class:`TowerValidationWarning`; anything else raises
  :class:`RequestValidationError` before anything is sent, in both modes.  Messages say
  the rule broken ("read-only property 'workspaceId' must not be sent") and, inside a
  ``oneOf`` chosen by its discriminator or by a sibling type field (``platform``,
  ``provider``), which member was chosen.
* Schemas are compiled on the first call of an operation, before anything is sent
  (request body and documented 2xx responses); a schema that cannot be converted or
  compiled raises :class:`SpecError` naming the operation and the JSON pointer.
* Error statuses (and 1xx/3xx) are never validated: they become :class:`ApiError`.
* :meth:`Validator.unmarshal` is the opt-in typed view (``date-time`` strings to
  :class:`datetime.datetime`); it is never called on the hot path.

jsonschema-rs is imported lazily, on the first compilation, so importing
``tower_async`` stays cheap.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ._modes import MODES, Mode
from ._schema import (
    DEFS_PREFIX,
    MARK,
    SchemaConverter,
    SchemaProblem,
    Variant,
    def_key,
    def_place,
    escape_token,
)
from ._wire import looks_like_files
from .errors import RequestValidationError, ResponseValidationError, SpecError
from .operations import MULTIPART_MEDIA, Operation, _is_json

if TYPE_CHECKING:
    import jsonschema_rs

__all__ = [
    "TOLERATED",
    "TOLERATED_REQUESTS",
    "Mode",
    "TowerValidationWarning",
    "Validator",
]


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

#: The request deviations ``warn`` mode sends as given (reported at WARNING), kind ->
#: description.  The README's leniency table lists them in its requests column.
TOLERATED_REQUESTS: Mapping[str, str] = {
    "missing-discriminator": "a oneOf member without its discriminator property where a "
    'sibling property tells the type (config without "discriminator" beside '
    '"platform": "aws-batch")',
    "read-only-property": "a property the document marks readOnly (an exported "
    "computeEnv.workspaceId sent back)",
    "null-property": "null for an optional property the document does not mark nullable",
}

_DIGITS = re.compile(r"-?[0-9]+")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_MAX_REPORTED = 10_000
#: clean responses in a row after which a shape's warn-mode schema checks are sampled
WARN_SAMPLE_AFTER = 20
#: once sampled, one response in this many of the shape is validated (1: every one)
WARN_SAMPLE_EVERY = 8


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
    """Compiled validators for one schema; the lenient one is compiled on demand.

    ``where`` names the schema in errors (``CreateComputeEnv request body``); ``at`` is
    its JSON pointer in the document.
    """

    __slots__ = (
        "_converter",
        "_lenient",
        "_schema",
        "at",
        "direction",
        "lenient_root",
        "strict",
        "strict_root",
        "where",
    )

    def __init__(
        self,
        converter: SchemaConverter,
        schema: Mapping[str, Any],
        direction: Literal["request", "response"],
        at: str,
        where: str,
    ) -> None:
        self._converter = converter
        self._schema = schema
        self.direction = direction
        self.at = at
        self.where = where
        self._lenient: jsonschema_rs.Validator | None = None
        self.lenient_root: dict[str, Any] = {}
        self.strict_root = self._root(direction)
        self.strict = _compile(self.strict_root, where, at)

    def _root(self, variant: Variant) -> dict[str, Any]:
        try:
            return self._converter.root(self._schema, variant, self.at)
        except SchemaProblem as exc:
            raise SpecError(f"{self.where}: the schema at {exc.place} {exc.reason}") from None
        except RecursionError:
            raise SpecError(f"{self.where}: the schema at {self.at} nests too deeply") from None

    @property
    def lenient(self) -> jsonschema_rs.Validator:
        if self._lenient is None:
            variant: Variant = "request-lenient" if self.direction == "request" else "lenient"
            self.lenient_root = self._root(variant)
            self._lenient = _compile(self.lenient_root, self.where, self.at)
        return self._lenient

    def problems(self, data: Any, strict: bool) -> list[_Problem]:
        """Every problem one validator finds, worded (the lenient one: only the real ones)."""
        validator, root = (self.strict, self.strict_root) if strict else (self.lenient, None)
        root = root if strict else self.lenient_root
        found = [p for e in validator.iter_errors(data) for p in _classify(e, root, self.direction)]
        typed = {tuple(p.path) for p in found if p.kind == "unknown-type"}
        unique: dict[tuple[Any, ...], _Problem] = {}
        for p in found:
            if not (p.kind == "enum" and tuple(p.path) in typed):
                unique.setdefault((*p.path, p.message), p)
        return list(unique.values())


# Sentinels in the response cache.
_SKIP: Any = "skip"  # nothing to validate (not JSON, a stream, or an empty schema)
_NO_CONTENT: Any = "no-content"  # documented without a body
_UNDOCUMENTED: Any = "undocumented"  # status not documented at all


def _compile(root: Mapping[str, Any], where: str, at: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    try:
        return jsonschema_rs.Draft202012Validator(dict(root), validate_formats=True)
    except Exception as exc:  # jsonschema_rs.ValidationError: a keyword's value is invalid
        path = list(getattr(exc, "instance_path", None) or ())
        base = at
        if len(path) > 1 and path[0] == "$defs":
            base, path = def_place(str(path[1])), path[2:]
        place = base + "".join("/" + escape_token(str(t)) for t in path)
        reason = str(getattr(exc, "message", None) or exc).splitlines()[0]
        raise SpecError(f"{where}: the schema at {place or '/'} is invalid: {reason}") from None


def _place(op: Operation, *tail: str) -> str:
    """The JSON pointer of a part of ``op`` in the document."""
    tokens = ("paths", op.path, op.method.lower(), *tail)
    return "".join("/" + escape_token(t) for t in tokens)


def _json_media(content: Mapping[str, Mapping[str, Any]]) -> str:
    return next((media for media in content if _is_json(media)), "")


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


def _node_at(root: Mapping[str, Any], tokens: Iterable[str | int]) -> Any:
    """The schema object at ``tokens`` in ``root``, following ``$ref`` tokens of an
    evaluation path; None when the path leaves the schema."""
    node: Any = root
    try:
        for token in tokens:
            if token == "$ref" and isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
                node = root["$defs"][def_key(node["$ref"])]
            else:
                node = node[token]
    except (KeyError, IndexError, TypeError):
        return None
    return node


def _branch(root: Mapping[str, Any] | None, evaluation_path: list[str | int]) -> str:
    """`` (in AwsBatchConfig, chosen by platform 'aws-batch')`` for an error in a member."""
    if not root:
        return ""
    node: Any = root
    note = ""
    for i, token in enumerate(evaluation_path[:-1]):
        mark = node.get(MARK) if isinstance(node, Mapping) else None
        if isinstance(mark, Mapping) and "branch" in mark and token != "if":
            how = f"chosen by {mark['by']} {mark['value']!r}" if "by" in mark else "the closest"
            note = f" (in {mark['branch']}, {how})"
        node = _node_at(root, evaluation_path[: i + 1])
    return note


def _listed(values: Iterable[Any], limit: int = 20) -> str:
    values = list(values)
    text = ", ".join(str(v) for v in values[:limit])
    return text + (", ..." if len(values) > limit else "")


def _describe(error: Any, root: Mapping[str, Any] | None, direction: str) -> tuple[str, str]:
    """(kind, the rule in words) for one jsonschema-rs error."""
    kind = error.kind
    name = kind.name
    path = list(error.instance_path)
    prop = path[-1] if path and isinstance(path[-1], str) else None
    mark = _node_at(root, list(error.schema_path)[:-1]) if root else None
    mark = mark.get(MARK) if isinstance(mark, Mapping) else None
    if name == "falseSchema":  # only readOnly (requests) / writeOnly (responses) make these
        what = f"property {prop!r}" if prop is not None else "value"
        if direction == "request":
            return "read-only-property", f"read-only {what} must not be sent"
        return "write-only-property", f"write-only {what} must not be returned"
    if name == "additionalProperties":
        unexpected = ", ".join(repr(u) for u in kind.unexpected)
        return name, f"unknown property {unexpected}: this object allows only its listed properties"
    if isinstance(mark, Mapping) and name in ("required", "enum"):
        family, values = mark["family"], _listed(mark["values"])
        if "sibling" in mark:
            field, of = mark["sibling"], mark["of"]
            rule = f"without {mark['discriminator']!r} in {of!r}, {field!r} tells its {family} type"
            if name == "required":
                return "missing-type-field", f"{field!r} is missing: {rule} (one of {values})"
            return "unknown-type", (
                f"expected one of the {family} types ({values}), "
                f"got {_shown(error.instance)}: {rule}"
            )
        disc = mark["discriminator"]
        if name == "required" and kind.property == disc:
            return "missing-discriminator", (
                f"property {disc!r} is missing: it selects the {family} type (one of {values})"
            )
        if name == "enum":
            return (
                name,
                f"unknown {disc} {_shown(error.instance)}: "
                f"expected one of the {family} types ({values})",
            )
    if error.instance is None and prop is not None and name in ("type", "enum", "const"):
        text = f"null for {prop!r}, which the document does not mark nullable"
        return "null-property", text
    if name == "enum":
        return name, f"{_shown(error.instance)} is not one of {_listed(map(_shown, kind.options))}"
    if name == "type":  # without the "null" a relaxation added
        types = " or ".join(json.dumps(t) for t in kind.types if t != "null") or '"null"'
        return name, f"{_shown(error.instance)} is not of type {types}"
    return name, error.message


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _classify(
    error: Any, root: Mapping[str, Any] | None = None, direction: str = "response"
) -> list[_Problem]:
    """One jsonschema-rs error -> problems (flattening anyOf/oneOf to the likeliest branch)."""
    kind = error.kind
    name = kind.name
    instance = error.instance
    path = list(error.instance_path)
    evaluation = list(error.evaluation_path)
    described, message = _describe(error, root, direction)
    message += _branch(root, evaluation)
    if direction == "request":
        if name in ("anyOf", "oneOf"):
            return _flatten(error, root, direction) or [_Problem(path, name, message, False)]
        return [_Problem(path, described, message, described in TOLERATED_REQUESTS)]
    if (
        instance is None
        and path
        and isinstance(path[-1], str)
        and _reached_via(evaluation) == "property"
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
        if "object" in types and _reached_via(evaluation) == "map":
            return [_Problem(path, "string-map-value", message, True)]
    if name in ("anyOf", "oneOf"):
        flattened = _flatten(error, root, direction)
        if flattened:
            return flattened
    return [_Problem(path, described, message, False)]


def _flatten(error: Any, root: Mapping[str, Any] | None, direction: str) -> list[_Problem]:
    """The problems of the likeliest branch of a failed anyOf/oneOf (none: no branch)."""
    branches = [
        [p for e in branch for p in _classify(e, root, direction)] for branch in error.kind.context
    ]
    tolerated = [b for b in branches if b and all(p.tolerated for p in b)]
    if tolerated:
        return min(tolerated, key=len)
    depth = len(list(error.instance_path))
    deeper = [b for b in branches if b and max(len(p.path) for p in b) > depth]
    if deeper:
        return max(deeper, key=lambda b: (max(len(p.path) for p in b), -len(b)))
    return []


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
        # warn-mode sampling (module docstring): clean responses in a row per shape
        self._clean: dict[tuple[str, int], int] = {}
        self.sample_after = WARN_SAMPLE_AFTER
        self.sample_every = WARN_SAMPLE_EVERY

    # -- requests -------------------------------------------------------------------------

    def validate_request_body(self, op: Operation, body: Any, mode: Mode) -> None:
        """Check ``body`` before it is sent; see the module docstring for the modes.

        The first call of an operation (in ``strict`` or ``warn``, with or without a body)
        compiles its request and 2xx response schemas, raising :class:`SpecError` for
        one that cannot be compiled.  Raises :class:`RequestValidationError` for a body
        the mode refuses; never changes ``body``.
        """
        if mode == "off":
            return
        compiled = self._requests.get(op.operation_id)
        if compiled is None:
            compiled = self._prepare_operation(op)
        if body is None or compiled is _SKIP:
            return
        if looks_like_files(body) and op.body is not None and MULTIPART_MEDIA in op.body.content:
            return
        if mode not in MODES:
            raise ValueError(f"validation mode must be one of {MODES}, not {mode!r}")
        if compiled.strict.is_valid(body):
            return
        self._invalid_request(op, compiled, body, mode)

    def _invalid_request(self, op: Operation, compiled: _Compiled, body: Any, mode: Mode) -> None:
        """A body the document does not describe: report and send it, or raise."""
        sendable = compiled.lenient.is_valid(body)
        if mode == "warn" and sendable:
            self._report_request(op, compiled.problems(body, strict=True))
            return
        problems = compiled.problems(body, strict=mode == "strict")
        raise RequestValidationError(
            op.operation_id, [(format_path(p.path, "body"), p.message) for p in problems]
        )

    def _prepare_operation(self, op: Operation) -> Any:
        """Compile the request body schema and the 2xx response schemas of ``op``."""
        for status in op.responses:
            code = int(status) if len(status) == 3 and status.isascii() and status.isdigit() else 0
            if 200 <= code <= 299 and (op.operation_id, code) not in self._responses:
                self._response_entry(op, code)
        return self._request_entry(op)

    def _request_entry(self, op: Operation) -> Any:
        schema = op.body.json_schema if op.body is not None else None
        entry: Any = _SKIP
        if schema and op.body is not None:
            media = _json_media(op.body.content)
            at = _place(op, "requestBody", "content", media, "schema")
            where = f"{op.operation_id} request body"
            entry = _Compiled(self._converter, schema, "request", at, where)
        self._requests[op.operation_id] = entry
        return entry

    def _report_request(self, op: Operation, problems: list[_Problem]) -> None:
        for problem in problems:
            if self._first_report(op, problem):
                text = (
                    f"{op.operation_id} request body at {format_path(problem.path, 'body')}: "
                    f"{problem.message} [{problem.kind}]; sent as given "
                    "(validation='strict' refuses it)"
                )
                logger.warning("%s", text)
                warnings.warn(text, TowerValidationWarning, stacklevel=4)

    def forget_reports(self) -> None:
        """Report every deviation again, as if none had been seen (tests, a new deploy)."""
        with self._lock:
            self._reported.clear()
            self._clean.clear()

    def _first_report(self, op: Operation, problem: _Problem) -> bool:
        key = (op.operation_id, _folded(problem.path), problem.kind)
        with self._lock:
            if key in self._reported:
                return False
            if len(self._reported) >= _MAX_REPORTED:
                self._reported.clear()
            self._reported.add(key)
        return True

    # -- responses ------------------------------------------------------------------------

    def validate_response(
        self, op: Operation, status: int, content_type: str, data: Any, mode: Mode
    ) -> None:
        """Check a decoded 2xx JSON response; see the module docstring for the modes."""
        if mode == "off" or status < 200 or status > 299:
            return
        shape = (op.operation_id, status)
        entry = self._responses.get(shape)
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
            self._warn_response(op, shape, entry, data)
            return
        elif entry.strict.is_valid(data):
            return
        else:
            problems = entry.problems(data, strict=True)
        if mode == "strict":
            raise ResponseValidationError(
                op.operation_id,
                status,
                [(format_path(p.path), f"{p.message} [{p.kind}]") for p in problems],
                data,
            )
        self._report(op, status, problems)

    def _warn_response(
        self, op: Operation, shape: tuple[str, int], entry: _Compiled, data: Any
    ) -> None:
        """Warn mode, a JSON body: validated, or skipped by the sampling policy."""
        status = shape[1]
        clean = self._clean.get(shape, 0)
        if clean >= self.sample_after:
            self._clean[shape] = clean + 1
            if (clean - self.sample_after) % self.sample_every:
                return  # between two samples of a shape seen clean many times
        # One pass in the common cases: the lenient validator accepts valid payloads and
        # those with only tolerated deviations (real servers send nulls in most pages).
        if entry.lenient.is_valid(data):
            if logger.isEnabledFor(logging.DEBUG) and not entry.strict.is_valid(data):
                self._clean[shape] = 0
                self._report(op, status, self._tolerated_problems(entry, data))
            elif clean < self.sample_after:
                self._clean[shape] = clean + 1
            return
        if entry.strict.is_valid(data):
            return  # a oneOf that the relaxations made ambiguous
        self._clean[shape] = 0
        self._report(op, status, self._warn_problems(entry, data))

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
            if schema is None:
                entry = _SKIP
            else:
                media = _json_media(spec.content)
                at = _place(op, "responses", spec.status, "content", media, "schema")
                where = f"{op.operation_id} {spec.status} response"
                entry = _Compiled(self._converter, schema, "response", at, where)
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
                found = _classify(error, entry.lenient_root, "response")
                problems.extend(p for p in found if not p.tolerated)
        if logger.isEnabledFor(logging.DEBUG):
            problems.extend(Validator._tolerated_problems(entry, data))
        return problems

    @staticmethod
    def _tolerated_problems(entry: _Compiled, data: Any) -> list[_Problem]:
        """The tolerated deviations in a payload (only listed when DEBUG is on)."""
        return [p for p in entry.problems(data, strict=True) if p.tolerated]

    def _report(self, op: Operation, status: int, problems: list[_Problem]) -> None:
        for problem in problems:
            if not self._first_report(op, problem):
                continue
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
        try:
            root = self._converter.root(schema, "response")
        except SchemaProblem as exc:
            raise SpecError(f"{op.operation_id} {status} response: {exc}") from None
        return _unmarshal(root, root, data, 0)


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
        target = root.get("$defs", {}).get(def_key(ref))
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
    """allOf members (of a discriminator chain: the member the value selects), plus the
    first anyOf/oneOf member that is not the null alternative."""
    subs = []
    for sub in schema.get("allOf") or ():
        if isinstance(sub, Mapping) and "if" in sub and "then" in sub:
            when = sub["if"].get("properties", {}) if isinstance(sub["if"], Mapping) else {}
            if isinstance(value, Mapping) and all(
                isinstance(c, Mapping) and value.get(k, c) == c.get("const")
                for k, c in when.items()
            ):
                subs.append(sub["then"])
            continue
        subs.append(sub)
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            if isinstance(branch, Mapping) and branch.get("type") != "null":
                subs.append(branch)
                break
    return subs
