"""The sans-I/O core: build a request from arguments, interpret a response.

Pure functions, no I/O and no event loop: :func:`build_request` turns an
:class:`~tower_async.operations.Operation` and keyword arguments into a
:class:`Request` (method, URL, headers, body bytes) or raises
:class:`~tower_async.errors.RequestValidationError`; :func:`parse_response`
turns a :class:`RawResponse` into plain Python data or raises an
:class:`~tower_async.errors.ApiError`.  The aiohttp transport is a thin layer
around these (see gidgethub's ``sansio.py`` for the idea).
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import PurePath
from types import TracebackType
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote, urljoin, urlsplit

import orjson

from ._wire import header, looks_like_files
from .errors import (
    ApiError,
    ConfigurationError,
    RedirectError,
    RequestValidationError,
    ResponseValidationError,
    SpecError,
    api_error_for_status,
)
from .operations import CALL_OPTIONS, JSON_MEDIA, MULTIPART_MEDIA, Operation, Parameter, _is_json

__all__ = [
    "MultipartField",
    "RawResponse",
    "Request",
    "StreamBody",
    "base_url",
    "build_request",
    "decode_response",
    "error_message",
    "parse_response",
]

MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class MultipartField:
    """One part of a multipart/form-data body; ``value`` is bytes, str, a path or a file."""

    name: str
    value: bytes | str | PurePath | IO[bytes]
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A request ready to send.  ``repr`` never shows header values (the token)."""

    operation_id: str
    method: str
    url: str  # fully percent-encoded
    headers: Mapping[str, str]
    body: bytes | None = None
    multipart: tuple[MultipartField, ...] | None = None

    def __repr__(self) -> str:
        size = len(self.body) if self.body is not None else 0
        parts = f", multipart={len(self.multipart)} parts" if self.multipart else ""
        return (
            f"Request({self.operation_id}, {self.method} {self.url}, "
            f"headers=[{', '.join(self.headers)}], body={size} bytes{parts})"
        )


@runtime_checkable
class StreamBody(Protocol):
    """An unread response body, as a transport hands it back (the aiohttp transport's is
    :class:`~tower_async.transport.StreamingBody`): read it in chunks, by line or whole, and
    release it (``async with`` does) so the connection can be reused."""

    @property
    def content_type(self) -> str: ...

    def iter_chunked(self, size: int = 65536) -> AsyncIterator[bytes]: ...

    def iter_lines(self, encoding: str = "utf-8") -> AsyncIterator[str]: ...

    async def read(self) -> bytes: ...

    async def text(self, encoding: str = "utf-8") -> str: ...

    def release(self) -> None: ...

    def close(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(slots=True)
class RawResponse:
    """What came back: status, headers and either the body or an unread stream."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: StreamBody | None = None  # set by the transport when the body is streamed, unread

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters ("" when there is none)."""
        value = header(self.headers, "Content-Type") or ""
        media = _MEDIA.get(value)
        if media is None:
            media = value.split(";", 1)[0].strip().lower()
            if len(_MEDIA) < 64:  # the few values a server sends, remembered
                _MEDIA[value] = media
        return media


_MEDIA: dict[str, str] = {}


# ---------------------------------------------------------------------------------------------
# Parameter checking and serialisation


_ASCII_INT = re.compile(r"-?[0-9]+")
_ASCII_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
#: most items one array parameter may carry (a generator that never ends is refused)
MAX_ARRAY_ITEMS = 10_000


def _scalar_text(value: Any, kind: str | None) -> str:
    """The wire text of one scalar of JSON type ``kind``; TypeError/ValueError with a reason."""
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.isascii() and _ASCII_INT.fullmatch(value):
            return value
        raise TypeError(f"expected an integer (ASCII digits), got {type(value).__name__} {value!r}")
    if kind == "number":
        if isinstance(value, float) and math.isfinite(value):
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.isascii() and _ASCII_NUMBER.fullmatch(value):
            return value
        raise TypeError(f"expected a number (finite), got {type(value).__name__} {value!r}")
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value in ("true", "false"):
            return value
        raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        if kind == "string":
            raise TypeError(f"expected a string, got {value!r}")
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)  # ids are often held as numbers
    if kind == "string" and isinstance(value, (date, time)):
        return value.isoformat()
    what = "a string" if kind == "string" else "a scalar value"
    raise TypeError(f"expected {what}, got {type(value).__name__}")


def _check_text(text: str) -> str:
    """Refuse text that cannot be sent as UTF-8 (lone surrogates)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate (not encodable as UTF-8)") from None
    return text


def _check_scalar(value: Any, kind: str | None, enum: tuple[Any, ...] | None) -> str:
    """Return the wire form of a scalar, or raise TypeError/ValueError with a reason."""
    text = _check_text(_scalar_text(value, kind))
    if enum is not None and text not in enum:
        try:
            known = value in enum
        except Exception:  # an argument whose __eq__ raises is not one of the values
            known = False
        if not known:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, enum))}")
    return text


def _serialise(param: Parameter, value: Any) -> list[str] | dict[str, str]:
    """Wire values of one parameter: a list of strings (or pairs for objects)."""
    if param.kind == "array":
        if isinstance(value, Mapping):
            raise TypeError(f"expected a list of values, got {type(value).__name__}")
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            value = [value]
        items = list(itertools.islice(value, MAX_ARRAY_ITEMS + 1))
        if len(items) > MAX_ARRAY_ITEMS:
            raise ValueError(f"more than {MAX_ARRAY_ITEMS} values")
        return [_check_scalar(item, param.item_kind, param.item_enum) for item in items]
    if param.kind == "object" and isinstance(value, Mapping):
        return {
            _check_text(_scalar_text(k, None)): _check_scalar(v, None, None)
            for k, v in value.items()
        }
    return [_check_scalar(value, param.kind, param.enum)]


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_value(values: list[str], cookie: bool = False) -> str:
    text = ",".join(values)
    if _CONTROL.search(text):
        raise ValueError("control characters (CR, LF, NUL...) cannot be sent in a header")
    if cookie and ";" in text:
        raise ValueError("';' cannot be sent in a cookie value")
    return text


def _path_value(param: Parameter, values: list[str]) -> str:
    if any(v == "" for v in values):
        raise ValueError("path parameters cannot be empty")
    for v in values:
        segments = v.split("/") if param.carries_path else (v,)
        if any(seg in (".", "..") for seg in segments):
            raise ValueError(f"{v!r}: '.' and '..' cannot be path segments")
    safe = _PATH_SAFE + "/" if param.carries_path else _PATH_SAFE
    return ",".join(
        v if (v.isascii() and v.isalnum()) or _UNRESERVED.fullmatch(v) else quote(v, safe=safe)
        for v in values
    )


def _where(param: Parameter) -> str:
    return f"{param.location}.{param.name}"


def _close_matches(name: str, op: Operation) -> str:
    candidates = {p.python_name for p in op.parameters} | {p.name for p in op.parameters}
    if op.body is not None:
        candidates.add("body")
    close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    if candidates:
        return " (known: " + ", ".join(sorted(c for c in candidates if not c[0].isupper())) + ")"
    return " (this operation takes no parameters)"


_PATH_SAFE = "-._~!$&'()*+,;=:@"  # RFC 3986 pchar minus '/' and '%'
_DELIMITERS = {"spaceDelimited": "%20", "pipeDelimited": "|"}


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


def _q(text: str, safe: str = "") -> str:
    """Percent-encode one query component (keys and values; delimiters stay literal)."""
    if (text.isascii() and text.isalnum()) or _UNRESERVED.fullmatch(text):
        return text  # the common case (ids, numbers, names): nothing to encode
    return quote(text, safe=safe)


def _check_name(key: str) -> str:
    try:
        return _check_text(key)
    except ValueError:
        return ascii(key)


@functools.lru_cache(maxsize=64)
def base_url(endpoint: str) -> str:
    """``scheme://host[:port][/base]`` of an endpoint, checked; paths are appended to it."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigurationError(f"the endpoint is not a URL: {endpoint!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"the endpoint must be an http(s) URL with a host: {endpoint!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"the endpoint may not carry user info, a query or a fragment: {parts.hostname!r}"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _expand(op: Operation, templated: Mapping[str, str]) -> str:
    path = op.path
    if not path.startswith("/"):
        raise SpecError(f"{op.operation_id}: the document's path {path!r} does not start with '/'")
    for name, encoded in templated.items():
        path = path.replace("{" + name + "}", encoded)
    return path


def _place(
    param: Parameter,
    wire: list[str] | dict[str, str],
    query: list[tuple[str, str]],
    out_headers: dict[str, str],
    templated: dict[str, str],
) -> None:
    """Put one parameter's wire values where it goes (path, query, header or cookie)."""
    if param.location == "query":
        _add_query(param, wire, query)
        return
    values = wire if isinstance(wire, list) else [f"{k},{v}" for k, v in wire.items()]
    if param.location == "path":
        templated[param.name] = _path_value(param, values)
    elif param.location == "header":
        out_headers[param.name] = _header_value(values)
    else:  # cookie
        cookie = f"{param.name}={_header_value(values, cookie=True)}"
        prior = out_headers.get("Cookie")
        out_headers["Cookie"] = f"{prior}; {cookie}" if prior else cookie


def _add_query(
    param: Parameter, wire: list[str] | dict[str, str], query: list[tuple[str, str]]
) -> None:
    if isinstance(wire, dict):
        if param.style == "deepObject":
            query.extend((_q(f"{param.name}[{k}]", "[]"), _q(v)) for k, v in wire.items())
        elif param.explode:
            query.extend((_q(k), _q(v)) for k, v in wire.items())
        else:
            joined = ",".join(f"{_q(k)},{_q(v)}" for k, v in wire.items())
            query.append((_q(param.name), joined))
    elif param.kind == "array" and not param.explode:
        if wire:
            delimiter = _DELIMITERS.get(param.style, ",")
            query.append((_q(param.name), delimiter.join(_q(v) for v in wire)))
    else:
        name = _q(param.name)
        query.extend((name, _q(v)) for v in wire)


def _match_arguments(
    op: Operation, arguments: Mapping[str, Any], problems: list[tuple[str, str]]
) -> dict[Parameter, Any]:
    """Map each argument (spec name or snake_case) to its parameter; report strays."""
    given: dict[Parameter, Any] = {}
    for key, value in arguments.items():
        if not isinstance(key, str):
            problems.append((repr(key), "parameter names are strings"))
            continue
        param = op.parameter(key)
        if param is None:
            if key in CALL_OPTIONS:
                problems.append((key, f"{key!r} is not a parameter here"))
            else:
                problems.append((_check_name(key), "unknown parameter" + _close_matches(key, op)))
            continue
        if param in given and value is not None and given[param] is not None:
            problems.append(
                (
                    f"{param.location}.{param.name}",
                    f"given twice (as {param.name!r} and {param.python_name!r})",
                )
            )
            continue
        if value is not None or param not in given:
            given[param] = value
    return given


def _encode_parameters(
    op: Operation,
    given: Mapping[Parameter, Any],
    default_workspace: int | str | None,
    out_headers: dict[str, str],
    problems: list[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Encode every given parameter into its place: (path templates, query pairs)."""
    templated: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for param in op.parameters:
        value = given.get(param)
        if value is None and param.name == "workspaceId" and default_workspace is not None:
            value = default_workspace
        if value is None:
            if param.required:
                message = f"missing required parameter {param.python_name!r}"
                problems.append((_where(param), message))
            continue
        try:
            _place(param, _serialise(param, value), query, out_headers, templated)
        except (TypeError, ValueError) as exc:
            problems.append((_where(param), str(exc)))
    return templated, query


def _encode_body(
    op: Operation, body: Any, out_headers: dict[str, str], problems: list[tuple[str, str]]
) -> tuple[bytes | None, tuple[MultipartField, ...] | None]:
    """The request body: (payload bytes, multipart fields), at most one of them set."""
    if op.body is None:
        if body is not MISSING and body is not None:
            problems.append(("body", "this operation takes no request body"))
        return None, None
    if body is MISSING or body is None:
        if op.body.required:
            problems.append(("body", "missing required request body"))
        return None, None
    media = _choose_media(op, body)
    if media == MULTIPART_MEDIA:
        try:
            return None, _multipart_fields(body)
        except (TypeError, ValueError) as exc:
            problems.append(("body", str(exc)))
            return None, None
    return _encode_payload(media, body, out_headers, problems), None


def _encode_payload(
    media: str, body: Any, out_headers: dict[str, str], problems: list[tuple[str, str]]
) -> bytes | None:
    """A JSON, bytes or text body for ``media``; sets the Content-Type."""
    payload: bytes | None = None
    if _is_json(media):
        try:
            payload = orjson.dumps(body)
        except TypeError as exc:
            problems.append(("body", f"not JSON-serialisable: {exc}"))
        out_headers["Content-Type"] = JSON_MEDIA
    elif isinstance(body, (bytes, bytearray)):
        payload = bytes(body)
        out_headers["Content-Type"] = media
    elif isinstance(body, str):
        try:
            payload = body.encode()
        except UnicodeEncodeError:
            problems.append(("body", "contains a lone surrogate (not encodable as UTF-8)"))
        out_headers["Content-Type"] = media
    else:
        problems.append(("body", f"expected bytes or str for {media}"))
    return payload


def build_request(
    op: Operation,
    base: str,
    arguments: Mapping[str, Any],
    *,
    body: Any = MISSING,
    headers: Mapping[str, str] | None = None,
    default_workspace: int | str | None = None,
) -> Request:
    """Build the :class:`Request` for one call of ``op``.

    ``arguments`` are the operation's parameters by spec name (``workspaceId``) or
    snake_case (``workspace_id``); ``None`` values count as not given.  ``body`` is
    the JSON body, or for multipart operations a mapping of field name to bytes,
    str, path, file object or ``(filename, content[, content_type])``.
    Raises :class:`RequestValidationError` naming the operation and parameter.
    """
    problems: list[tuple[str, str]] = []
    given = _match_arguments(op, arguments, problems)
    out_headers: dict[str, str] = dict(headers or {})
    templated, query = _encode_parameters(op, given, default_workspace, out_headers, problems)
    payload, multipart = _encode_body(op, body, out_headers, problems)
    if problems:
        raise RequestValidationError(op.operation_id, problems)

    url = base_url(base) + _expand(op, templated)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    return Request(
        operation_id=op.operation_id,
        method=op.method,
        url=url,
        headers=out_headers,
        body=payload,
        multipart=multipart,
    )


def _choose_media(op: Operation, body: Any) -> str:
    assert op.body is not None
    media_types = op.body.media_types
    json_media = next((m for m in media_types if _is_json(m)), None)
    has_multipart = MULTIPART_MEDIA in media_types
    if has_multipart and (json_media is None or looks_like_files(body)):
        return MULTIPART_MEDIA
    if json_media is not None:
        return json_media
    return media_types[0] if media_types else JSON_MEDIA


def _multipart_fields(body: Any) -> tuple[MultipartField, ...]:
    if not isinstance(body, Mapping):
        raise TypeError("a multipart body is a mapping of field name to content")
    fields: list[MultipartField] = []
    for name, value in body.items():
        filename: str | None = None
        content_type: str | None = None
        if isinstance(value, tuple):
            if not 2 <= len(value) <= 3:
                raise ValueError(f"field {name!r}: use (filename, content[, content_type])")
            filename = str(value[0])
            content_type = str(value[2]) if len(value) == 3 else None
            value = value[1]
        if isinstance(value, bytearray):
            value = bytes(value)
        if isinstance(value, PurePath):
            filename = filename or value.name
            if not os.path.isfile(value):
                raise ValueError(f"field {name!r}: no such file {str(value)!r}")
        elif hasattr(value, "read"):
            filename = filename or os.path.basename(str(getattr(value, "name", name)))
        elif not isinstance(value, (bytes, str)):
            raise TypeError(f"field {name!r}: expected bytes, str, a path or a file object")
        elif isinstance(value, bytes) and filename is None:
            filename = str(name)
        elif isinstance(value, str):
            _check_text(value)
        for label in (str(name), filename, content_type):
            if label is not None:
                _header_value([_check_text(label)])  # names go into the part's headers
        fields.append(
            MultipartField(
                name=str(name), value=value, filename=filename, content_type=content_type
            )
        )
    return tuple(fields)


# ---------------------------------------------------------------------------------------------
# Responses


def error_message(body: bytes) -> str | None:
    """The Platform's ``{"message": ...}``, else a short text of the body, else None."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return text or None
    if isinstance(data, Mapping):
        for key in ("message", "msg", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def parse_response(op: Operation, request: Request, raw: RawResponse) -> Any:
    """Interpret a response: data for 2xx, :class:`ApiError` subclass otherwise.

    JSON bodies are decoded with orjson into plain dicts and lists; 204 or an empty
    body gives None; a streamed body is returned as the transport's stream object;
    other media types are returned as ``str`` (text) or ``bytes``.  A 3xx raises
    :class:`~tower_async.errors.RedirectError` (redirects are never followed).  A 2xx
    whose media type or body does not match the document raises
    :class:`ResponseValidationError` (:func:`decode_response` reports it instead).
    """
    data, deviation = decode_response(op, request, raw)
    if deviation is not None:
        raise ResponseValidationError(op.operation_id, raw.status, [("", deviation)], data)
    return data


def decode_response(op: Operation, request: Request, raw: RawResponse) -> tuple[Any, str | None]:
    """``(data, deviation)`` of a 2xx, else raise :class:`ApiError` (see :func:`parse_response`).

    ``deviation`` is None, or a sentence saying how the media type or body differs from
    what the operation documents for the status (``text/html`` for a JSON operation, an
    empty body where JSON is documented, a body that is not JSON); ``data`` is then the
    body as it came (text or bytes, or None when empty).
    """
    status = raw.status
    if status >= 300 or status < 200:
        raise _error(op, request, raw)
    if raw.stream is not None:
        return raw.stream, None
    body = raw.body
    if status == 204:
        return None, None
    content_type = raw.content_type
    if not body:
        return None, _deviation(op, status, content_type, "an empty body")
    if not content_type or _is_json(content_type):
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError as exc:
            what = f"a body that is not valid JSON ({exc}; {len(body)} bytes)"
            if content_type:  # labelled JSON but is not: a deviation whatever the document says
                return body.decode("utf-8", "replace"), what
            return body, _deviation(op, status, content_type, what)
    data = body.decode("utf-8", "replace") if content_type.startswith("text/") else body
    return data, _deviation(op, status, content_type, f"a {content_type} body")


def _deviation(op: Operation, status: int, content_type: str, what: str) -> str | None:
    """Why ``what`` does not fit the documented JSON response, or None when it fits."""
    spec = op.response_for(status)
    if spec is None or not spec.content or spec.streams:
        return None  # undocumented or bodiless: the validator's concern; streams: anything
    media = tuple(m.split(";", 1)[0].strip().lower() for m in spec.content)
    if "*/*" in media or (content_type and content_type in media and not _is_json(content_type)):
        return None
    if not any(_is_json(m) for m in media):
        return None
    return f"{what}; the document describes {', '.join(media)} for {status}"


def _error(op: Operation, request: Request, raw: RawResponse) -> ApiError:
    status = raw.status
    body = raw.body
    data: Any = None
    if body and _is_json(raw.content_type or JSON_MEDIA):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = body.decode("utf-8", "replace")
    elif body:
        data = body.decode("utf-8", "replace")
    args = (status, op.operation_id, request.method, _public(request.url))
    if 300 <= status < 400:
        location = header(raw.headers, "Location") or ""
        return RedirectError(*args, location=_absolute(request.url, location), body=data)
    return api_error_for_status(status)(*args, error_message(body), data, raw.headers)


def _absolute(base: str, location: str) -> str:
    try:
        return urljoin(base, location.strip())
    except ValueError:
        return location


def _public(url: str) -> str:
    return url.split("?", 1)[0] if len(url) > 2000 else url
