"""Binding: one immutable :class:`Operation` per ``operationId`` of an OpenAPI 3.0 document.

Nothing here knows about the Seqera Platform: any OpenAPI 3.0 document binds.
An :class:`Operation` holds everything needed to build a request (method, path
template, parameters by location with style/explode, body media types) and to
interpret a response (media types and schemas per status).  Binding is pure and
cheap (a few milliseconds for the Platform's 250 operations); schemas are kept as
references into the document and only compiled by the validator on first use.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from ._docsafety import caller_stacklevel
from ._schema import unescape_token
from .errors import SpecError

__all__ = [
    "BodySpec",
    "Operation",
    "Parameter",
    "ResponseSpec",
    "bind_operations",
    "check_path_template",
    "resolve_ref",
    "snake_case",
]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
JSON_MEDIA = "application/json"
MULTIPART_MEDIA = "multipart/form-data"

# Per-call options accepted by every bound operation besides its parameters.
CALL_OPTIONS = frozenset({"body", "params", "validation", "timeout", "idempotent", "stream"})

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_SNAKE_1 = re.compile(r"(.)([A-Z][a-z]+)")
_SNAKE_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_IDENT = re.compile(r"\W+")
_UNDERSCORES = re.compile(r"__+")
_PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
ALIAS_PREFIX = "op_"
# In a path template outside {variables}: a backslash, an '@', a query or fragment
# delimiter, whitespace or a control character could move the request elsewhere.
_BAD_PATH_CHARS = re.compile(r"[\\@?#{}\s\x00-\x1f\x7f]")
_TEMPLATE_VARIABLE = re.compile(r"{[^{}/]*}")


def snake_case(name: str) -> str:
    """``ListWorkflows`` -> ``list_workflows``; ``workspaceId`` -> ``workspace_id``."""
    s = _NON_IDENT.sub("_", name)
    s = _SNAKE_1.sub(r"\1_\2", s)
    s = _SNAKE_2.sub(r"\1_\2", s)
    s = _UNDERSCORES.sub("_", s).strip("_").lower()
    if not s:
        s = "_"
    if s[0].isdigit():
        s = "_" + s
    if keyword.iskeyword(s):
        s += "_"
    return s


def check_path_template(path: str, where: str) -> None:
    """Refuse a path template that could send a request anywhere but below the endpoint.

    It must start with ``/`` and contain no empty, ``.`` or ``..`` segment (also
    percent-encoded), no encoded ``/`` or backslash, and no ``\\ @ ? #``, whitespace or
    control character outside its ``{variables}``.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise SpecError(f"{where}: the path {path!r} does not start with '/'")
    literal = _TEMPLATE_VARIABLE.sub("v", path)
    bad = _BAD_PATH_CHARS.search(literal)
    if bad is not None:
        raise SpecError(f"{where}: the path {path!r} contains {bad.group()!r}")
    segments = literal.split("/")[1:]
    if segments[-1] == "":
        segments.pop()  # a trailing slash
    for segment in segments:
        decoded = unquote(segment)
        if decoded in ("", ".", "..") or "/" in decoded or "\\" in decoded:
            raise SpecError(f"{where}: the path {path!r} has the segment {segment!r}")


def _ascii_fold(name: str) -> str:
    """``café`` -> ``cafe``; letters without an ASCII form -> ``_u65e5_``."""
    out = []
    for ch in unicodedata.normalize("NFKD", name):
        if ch.isascii():
            out.append(ch)
        elif not unicodedata.combining(ch):
            out.append(f"_u{ord(ch):04x}_")
    return "".join(out)


def _alias(op_id: str, taken: Mapping[str, str]) -> str:
    """``op_<snake_case>`` for an operationId whose own Python name cannot be used."""
    stem = snake_case(_ascii_fold(op_id)).strip("_")
    if not stem:
        stem = "x" + hashlib.sha256(op_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    alias = ALIAS_PREFIX + stem
    n = 1
    while alias in taken:
        n += 1
        alias = f"{ALIAS_PREFIX}{stem}_{n}"
    return alias


def python_names(op_ids: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """operationId -> Python name: its snake_case when that is a plain ASCII identifier
    (not a keyword, not ``reserved``, not already taken), else an ``op_`` alias."""
    blocked = set(reserved)
    names: dict[str, str] = {}  # python name -> op id
    later: list[str] = []
    for op_id in op_ids:
        natural = snake_case(op_id)
        if (
            _PLAIN_NAME.match(natural)
            and not keyword.iskeyword(natural.removesuffix("_"))  # snake_case's class_
            and natural not in blocked
            and natural not in names
        ):
            names[natural] = op_id
        else:
            later.append(op_id)
    for op_id in later:
        names[_alias(op_id, names)] = op_id
    return {op_id: name for name, op_id in names.items()}


def resolve_ref(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` chains (``#/components/...``) until a non-ref node."""
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise SpecError(f"only local references are supported, got {ref!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            part = unescape_token(part)
            if not isinstance(target, Mapping) or part not in target:
                raise SpecError(f"unresolvable reference {ref!r}")
            target = target[part]
        node = target
        seen += 1
        if seen > 64:
            raise SpecError(f"reference cycle at {ref!r}")
    return node


def schema_kind(document: Mapping[str, Any], schema: Any, depth: int = 0) -> tuple[str, Any]:
    """(kind, resolved schema) where kind is a JSON type name or ``any``.

    The one walk used by parameter binding and paging detection: ``type`` wins; a single
    ``allOf``/``oneOf``/``anyOf`` member stands for the schema; without a type, ``enum`` means
    a string, ``properties`` or ``allOf`` an object, ``items`` an array.  A schema that is its
    own single member (directly or in a cycle) is ``any`` once the chain is longer than 32.
    """
    resolved = resolve_ref(document, schema)
    if not isinstance(resolved, Mapping) or depth > 32:
        return "any", _EMPTY
    kind = resolved.get("type")
    if isinstance(kind, str):
        return kind, resolved
    for key in ("allOf", "oneOf", "anyOf"):
        subs = resolved.get(key)
        if isinstance(subs, list) and len(subs) == 1:
            return schema_kind(document, subs[0], depth + 1)
    if "enum" in resolved:
        return "string", resolved
    if "properties" in resolved or "allOf" in resolved:
        return "object", resolved
    if "items" in resolved:
        return "array", resolved
    return "any", resolved


@dataclass(frozen=True, slots=True, eq=False)
class Parameter:
    """One parameter of an operation, as the document declares it."""

    name: str
    python_name: str
    location: str  # "path" | "query" | "header" | "cookie"
    required: bool
    schema: Mapping[str, Any]
    style: str
    explode: bool
    kind: str  # JSON type of the (resolved) schema, or "any"
    item_kind: str | None
    enum: tuple[Any, ...] | None
    item_enum: tuple[Any, ...] | None
    nullable: bool
    carries_path: bool
    description: str = ""
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class BodySpec:
    """The request body: media type -> schema."""

    required: bool
    content: Mapping[str, Mapping[str, Any]]
    description: str = ""

    @property
    def media_types(self) -> tuple[str, ...]:
        return tuple(self.content)

    @property
    def json_schema(self) -> Mapping[str, Any] | None:
        for media, media_obj in self.content.items():
            if _is_json(media):
                schema = media_obj.get("schema")
                return schema if isinstance(schema, Mapping) else _EMPTY
        return None


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """One documented response: status key (``200``, ``2XX``, ``default``) -> content."""

    status: str
    description: str
    content: Mapping[str, Mapping[str, Any]]

    @property
    def media_types(self) -> tuple[str, ...]:
        return tuple(self.content)

    @property
    def is_json(self) -> bool:
        return any(_is_json(m) for m in self.content)

    @property
    def streams(self) -> bool:
        """True when the body is not JSON (a log, a CSV, a file): returned as a stream."""
        if not self.content:
            return False
        for media, media_obj in self.content.items():
            if _is_json(media):
                schema = media_obj.get("schema")
                return bool(isinstance(schema, Mapping) and schema.get("format") == "binary")
        return True


def _is_json(media: str) -> bool:
    media = media.split(";", 1)[0].strip().lower()
    return media == JSON_MEDIA or media.endswith("+json") or media == "*/*"


@dataclass(frozen=True, slots=True, eq=False)
class Operation:
    """Everything the document says about one operation.  Immutable and shared."""

    operation_id: str
    python_name: str
    method: str  # upper case
    path: str
    summary: str
    description: str
    tags: tuple[str, ...]
    deprecated: bool
    parameters: tuple[Parameter, ...]
    body: BodySpec | None
    responses: Mapping[str, ResponseSpec]
    needs_auth: bool
    # lookup by spec name and python name
    _by_name: Mapping[str, Parameter] = field(repr=False, compare=False)

    def parameter(self, name: str) -> Parameter | None:
        """The parameter called ``name`` (spec name or snake_case), if any."""
        return self._by_name.get(name)

    def response_for(self, status: int) -> ResponseSpec | None:
        """The documented response for an HTTP status (exact, then ``2XX``, then default)."""
        key = str(status)
        spec = self.responses.get(key)
        if spec is None:
            spec = self.responses.get(f"{key[0]}XX") or self.responses.get(f"{key[0]}xx")
        if spec is None:
            spec = self.responses.get("default")
        return spec

    @property
    def success_response(self) -> ResponseSpec | None:
        for key in sorted(self.responses):
            if key.startswith("2"):
                return self.responses[key]
        return None

    @property
    def streams(self) -> bool:
        """True when the success response is a stream (text/plain, CSV, binary)."""
        ok = self.success_response
        return bool(ok is not None and ok.streams)

    def __repr__(self) -> str:
        return f"<Operation {self.operation_id}: {self.method} {self.path}>"

    @property
    def doc(self) -> str:
        """A docstring made from the summary, description and parameters."""
        lines = [f"{self.operation_id}: {self.method} {self.path}"]
        if self.summary:
            lines += ["", self.summary]
        if self.description and self.description != self.summary:
            lines += ["", self.description]
        if self.deprecated:
            lines += ["", "Deprecated."]
        if self.parameters:
            lines += ["", "Parameters:"]
            for p in self.parameters:
                typ = p.kind if p.item_kind is None else f"array of {p.item_kind}"
                if p.enum:
                    typ += " (one of: " + ", ".join(map(str, p.enum)) + ")"
                req = "required" if p.required else "optional"
                alias = f" / {p.name}" if p.name != p.python_name else ""
                text = f"    {p.python_name}{alias} ({p.location}, {typ}, {req})"
                if p.description:
                    text += f": {p.description}"
                lines.append(text)
        if self.body is not None:
            req = "required" if self.body.required else "optional"
            lines += ["", f"body ({', '.join(self.body.media_types)}, {req})"]
            if self.body.description:
                lines[-1] += f": {self.body.description}"
        ok = self.success_response
        if ok is not None:
            what = ", ".join(ok.media_types) if ok.content else "no content"
            lines += ["", f"Returns {ok.status} ({what})"]
        return "\n".join(lines)


def _bind_parameter(document: Mapping[str, Any], raw: Mapping[str, Any], where: str) -> Parameter:
    prm = resolve_ref(document, raw)
    try:
        name = prm["name"]
        location = prm["in"]
    except (KeyError, TypeError) as exc:
        raise SpecError(f"{where}: parameter without name/in: {raw!r}") from exc
    if location not in ("path", "query", "header", "cookie"):
        raise SpecError(f"{where}: parameter {name!r} has unknown location {location!r}")
    schema = prm.get("schema")
    if not isinstance(schema, Mapping):
        content = prm.get("content")
        schema = _EMPTY
        if isinstance(content, Mapping):
            for media_obj in content.values():
                if isinstance(media_obj, Mapping) and isinstance(media_obj.get("schema"), Mapping):
                    schema = media_obj["schema"]
                    break
    kind, resolved = schema_kind(document, schema)
    item_kind: str | None = None
    item_enum: tuple[Any, ...] | None = None
    if kind == "array":
        items = resolved.get("items")
        if isinstance(items, Mapping):
            item_kind, item_resolved = schema_kind(document, items)
            if isinstance(item_resolved.get("enum"), list):
                item_enum = tuple(item_resolved["enum"])
        else:
            item_kind = "any"
    default_style = "form" if location in ("query", "cookie") else "simple"
    style = prm.get("style", default_style)
    explode = prm.get("explode", style == "form")
    enum = resolved.get("enum")
    lowered = name.lower()
    carries_path = location == "path" and (lowered == "path" or lowered.endswith("path"))
    return Parameter(
        name=name,
        python_name=snake_case(name),
        location=location,
        required=bool(prm.get("required", location == "path")),
        schema=schema,
        style=style,
        explode=bool(explode),
        kind=kind,
        item_kind=item_kind,
        enum=tuple(enum) if isinstance(enum, list) else None,
        item_enum=item_enum,
        nullable=bool(resolved.get("nullable", False)),
        carries_path=carries_path or bool(prm.get("allowReserved", False)),
        description=str(prm.get("description") or ""),
        deprecated=bool(prm.get("deprecated", False)),
    )


def _content(document: Mapping[str, Any], raw: Any) -> Mapping[str, Mapping[str, Any]]:
    content = raw.get("content") if isinstance(raw, Mapping) else None
    if not isinstance(content, Mapping):
        return _EMPTY
    out: dict[str, Mapping[str, Any]] = {}
    for media, media_obj in content.items():
        out[str(media)] = media_obj if isinstance(media_obj, Mapping) else _EMPTY
    return MappingProxyType(out)


def _undeclared_path_parameter(name: str) -> Parameter:
    """A template variable the document forgot to declare, bound as a required string."""
    return Parameter(
        name=name,
        python_name=snake_case(name),
        location="path",
        required=True,
        schema=MappingProxyType({"type": "string"}),
        style="simple",
        explode=False,
        kind="string",
        item_kind=None,
        enum=None,
        item_enum=None,
        nullable=False,
        carries_path=name.lower().endswith("path"),
    )


def _bind_parameters(
    document: Mapping[str, Any], path: str, raw_params: list[Any], where: str
) -> tuple[tuple[Parameter, ...], dict[str, Parameter]]:
    """(parameters, lookup by spec name then snake_case alias) of one operation."""
    params: dict[tuple[str, str], Parameter] = {}
    for raw_param in raw_params:
        p = _bind_parameter(document, raw_param, where)
        params[(p.location, p.name)] = p  # operation level overrides path level
    parameters = tuple(params.values())
    for name in re.findall(r"{([^}]+)}", path):
        if ("path", name) not in params:
            parameters += (_undeclared_path_parameter(name),)
    by_name: dict[str, Parameter] = {}
    for p in parameters:
        by_name.setdefault(p.name, p)
    for p in parameters:
        # snake_case aliases, unless they clash with another parameter's own name
        by_name.setdefault(p.python_name, p)
    return parameters, by_name


def _bind_body(document: Mapping[str, Any], raw_body: Any) -> BodySpec | None:
    if raw_body is None:
        return None
    rb = resolve_ref(document, raw_body)
    return BodySpec(
        required=bool(rb.get("required", False)),
        content=_content(document, rb),
        description=str(rb.get("description") or ""),
    )


def _bind_responses(document: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, ResponseSpec]:
    responses: dict[str, ResponseSpec] = {}
    for status, raw_resp in (raw.get("responses") or {}).items():
        resp = resolve_ref(document, raw_resp)
        responses[str(status)] = ResponseSpec(
            status=str(status),
            description=str(resp.get("description") or "") if isinstance(resp, Mapping) else "",
            content=_content(document, resp),
        )
    return responses


def _bind_operation(
    document: Mapping[str, Any],
    path: str,
    method: str,
    raw: Mapping[str, Any],
    path_params: list[Any],
    global_security: Any,
    python_name: str | None = None,
) -> Operation:
    op_id = _operation_id(path, method, raw)
    where = f"{op_id} ({method.upper()} {path})"
    raw_params = [*path_params, *(raw.get("parameters") or [])]
    parameters, by_name = _bind_parameters(document, path, raw_params, where)
    body = _bind_body(document, raw.get("requestBody"))
    responses = _bind_responses(document, raw)
    security = raw.get("security", global_security)
    needs_auth = bool(security) and not any(
        isinstance(req, Mapping) and not req for req in security
    )
    return Operation(
        operation_id=op_id,
        python_name=snake_case(op_id) if python_name is None else python_name,
        method=method.upper(),
        path=path,
        summary=str(raw.get("summary") or ""),
        description=str(raw.get("description") or ""),
        tags=tuple(str(t) for t in raw.get("tags") or ()),
        deprecated=bool(raw.get("deprecated", False)),
        parameters=parameters,
        body=body,
        responses=MappingProxyType(responses),
        needs_auth=needs_auth,
        _by_name=MappingProxyType(by_name),
    )


class OperationMap(Mapping[str, Operation]):
    """Read-only mapping operationId -> Operation, with lookup by snake_case name.

    Operations are indexed eagerly (names only, and every path template is checked) and
    bound on first access, so a session that uses five of the Platform's 250 operations
    binds five.  An operationId whose snake_case is not a plain ASCII identifier, is a
    keyword, is in ``reserved`` (the session's own attributes) or is taken by another
    operation gets an ``op_`` alias (``close`` -> ``op_close``, ``123go`` -> ``op_123go``);
    :attr:`aliases` lists them and one :class:`~tower_async.spec.SpecWarning` says so.
    """

    __slots__ = ("_bound", "_document", "_global_security", "_index", "_names", "_python")

    def __init__(self, document: Mapping[str, Any], reserved: Iterable[str] = ()) -> None:
        if not isinstance(document, Mapping):
            raise SpecError("an OpenAPI document must be a mapping")
        version = document.get("openapi")
        if not isinstance(version, str) or not version.startswith("3."):
            raise SpecError(f"only OpenAPI 3.x documents are supported (openapi: {version!r})")
        paths = document.get("paths")
        if not isinstance(paths, Mapping):
            raise SpecError("the document has no 'paths'")
        self._document = document
        self._global_security = document.get("security")
        self._index: dict[str, tuple[str, str, Mapping[str, Any], list[Any]]] = {}
        self._bound: dict[str, Operation] = {}
        for path, raw_item in paths.items():
            self._index_path(str(path), raw_item)
        self._names = python_names(self._index, reserved)  # op id -> python name
        self._python = {name: op_id for op_id, name in self._names.items()}
        if self.aliases:
            self._warn_aliases()

    def _index_path(self, path: str, raw_item: Any) -> None:
        try:
            item = resolve_ref(self._document, raw_item)
        except SpecError as exc:
            raise SpecError(f"path {path!r}: {exc}") from None
        if not isinstance(item, Mapping):
            return
        path_params = item.get("parameters") or []
        if not isinstance(path_params, list):
            raise SpecError(f"path {path!r}: 'parameters' is not a list")
        for method in HTTP_METHODS:
            raw_op = item.get(method)
            if not isinstance(raw_op, Mapping):
                continue
            op_id = _operation_id(path, method, raw_op)
            check_path_template(path, f"operation {op_id!r} ({method.upper()} {path!r})")
            if op_id in self._index:
                first = self._index[op_id]
                raise SpecError(
                    f"duplicate operationId {op_id!r} ({first[1].upper()} {first[0]} "
                    f"and {method.upper()} {path})"
                )
            self._index[op_id] = (path, method, raw_op, list(path_params))

    @property
    def aliases(self) -> Mapping[str, str]:
        """operationId -> alias, for the operations not bound under their snake_case."""
        return {
            op_id: name
            for op_id, name in self._names.items()
            if name.startswith(ALIAS_PREFIX) and name != snake_case(op_id)
        }

    def _warn_aliases(self) -> None:
        from .spec import SpecWarning

        listed = ", ".join(f"{op_id!r} -> {name}" for op_id, name in self.aliases.items())
        warnings.warn(
            f"{len(self.aliases)} operationId(s) cannot be attribute names (they clash with "
            f"the session's own attributes, another operation, a keyword, or are not ASCII "
            f"identifiers) and are bound under aliases: {listed}; "
            "tw.call(operationId) reaches each one too",
            SpecWarning,
            stacklevel=caller_stacklevel(),
        )

    def __getitem__(self, key: str) -> Operation:
        op = self._bound.get(key)
        if op is None:
            path, method, raw_op, path_params = self._index[key]
            where = f"operation {key!r} ({method.upper()} {path})"
            try:
                op = _bind_operation(
                    self._document,
                    path,
                    method,
                    raw_op,
                    path_params,
                    self._global_security,
                    self._names[key],
                )
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None
            except (AttributeError, KeyError, TypeError, ValueError, RecursionError) as exc:
                raise SpecError(f"{where}: cannot be bound: {exc!r}") from None
            self._bound[key] = op
        return op

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def by_python_name(self, name: str) -> Operation | None:
        op_id = self._python.get(name)
        return None if op_id is None else self[op_id]

    @property
    def python_names(self) -> tuple[str, ...]:
        return tuple(self._python)

    def __repr__(self) -> str:
        return f"<OperationMap of {len(self)} operations>"


def _operation_id(path: str, method: str, raw: Mapping[str, Any]) -> str:
    op_id = raw.get("operationId")
    if isinstance(op_id, str) and op_id:
        return op_id
    # Operations without an id still bind, under a name made from method + path.
    return snake_case(method + "_" + re.sub(r"[{}]", "", path.replace("/", "_")))


def bind_operations(document: Mapping[str, Any], reserved: Iterable[str] = ()) -> OperationMap:
    """Index every operation of an OpenAPI 3.0 document (each is bound on first use).

    ``reserved``: names the operations must not take (a session's own attributes).
    """
    return OperationMap(document, reserved)
