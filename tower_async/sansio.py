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
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any
from urllib.parse import quote

import orjson

from .errors import (
    RequestValidationError,
    ResponseValidationError,
    api_error_for_status,
)
from .operations import CALL_OPTIONS, JSON_MEDIA, MULTIPART_MEDIA, Operation, Parameter, _is_json

__all__ = [
    "MultipartField",
    "RawResponse",
    "Request",
    "build_request",
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


@dataclass(slots=True)
class RawResponse:
    """What came back: status, headers and either the body or an unread stream."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: Any = None  # set by the transport when the body is streamed, unread

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type") or self.headers.get("content-type") or ""
        return value.split(";", 1)[0].strip().lower()


# ---------------------------------------------------------------------------------------------
# Parameter checking and serialisation


def _check_scalar(value: Any, kind: str | None, enum: tuple[Any, ...] | None) -> str | None:
    """Return the wire form of a scalar, or raise TypeError/ValueError with a reason."""
    if kind == "integer":
        if isinstance(value, bool):
            raise TypeError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, str) and value.lstrip("-").isdigit():
            text = value
        else:
            raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                raise TypeError(f"expected a number, got {value!r}") from None
        text = str(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str) and value in ("true", "false"):
            text = value
        else:
            raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r}")
    elif kind == "string":
        if isinstance(value, str):
            text = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(value)  # ids are often held as numbers
        elif hasattr(value, "isoformat"):
            text = value.isoformat()
        else:
            raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    else:  # "any"/"object" items (the Platform's document declares string lists so)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise TypeError(f"expected a scalar value, got {type(value).__name__}")
    if enum is not None and value not in enum and text not in enum:
        raise ValueError(f"{value!r} is not one of {', '.join(map(repr, enum))}")
    return text


def _serialise(param: Parameter, value: Any) -> list[str] | dict[str, str]:
    """Wire values of one parameter: a list of strings (or pairs for objects)."""
    if param.kind == "array":
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            value = [value]
        return [_check_scalar(item, param.item_kind, param.item_enum) or "" for item in value]
    if param.kind == "object" and isinstance(value, Mapping):
        return {str(k): _check_scalar(v, None, None) or "" for k, v in value.items()}
    return [_check_scalar(value, param.kind, param.enum) or ""]


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
    if text.isalnum() or _UNRESERVED.fullmatch(text):
        return text  # the common case (ids, numbers, names): nothing to encode
    return quote(text, safe=safe)


def build_request(
    op: Operation,
    base_url: str,
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
    given: dict[Parameter, Any] = {}
    for key, value in arguments.items():
        param = op.parameter(key)
        if param is None:
            if key in CALL_OPTIONS:
                problems.append((key, f"{key!r} is not a parameter here"))
            else:
                problems.append((key, "unknown parameter" + _close_matches(key, op)))
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

    path = op.path
    query: list[tuple[str, str]] = []
    out_headers: dict[str, str] = dict(headers or {})
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
            wire = _serialise(param, value)
        except (TypeError, ValueError) as exc:
            problems.append((_where(param), str(exc)))
            continue
        if param.location == "path":
            values = wire if isinstance(wire, list) else [f"{k},{v}" for k, v in wire.items()]
            if any(v == "" for v in values):
                problems.append((_where(param), "path parameters cannot be empty"))
                continue
            safe = _PATH_SAFE + "/" if param.carries_path else _PATH_SAFE
            encoded = ",".join(
                v if v.isalnum() or _UNRESERVED.fullmatch(v) else quote(v, safe=safe)
                for v in values
            )
            path = path.replace("{" + param.name + "}", encoded)
        elif param.location == "query":
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
        elif param.location == "header":
            values = wire if isinstance(wire, list) else [f"{k},{v}" for k, v in wire.items()]
            out_headers[param.name] = ",".join(values)
        else:  # cookie
            values = wire if isinstance(wire, list) else [f"{k},{v}" for k, v in wire.items()]
            cookie = f"{param.name}={','.join(values)}"
            prior = out_headers.get("Cookie")
            out_headers["Cookie"] = f"{prior}; {cookie}" if prior else cookie

    payload: bytes | None = None
    multipart: tuple[MultipartField, ...] | None = None
    if op.body is None:
        if body is not MISSING and body is not None:
            problems.append(("body", "this operation takes no request body"))
    elif body is MISSING or body is None:
        if op.body.required:
            problems.append(("body", "missing required request body"))
    else:
        media = _choose_media(op, body)
        if media == MULTIPART_MEDIA:
            try:
                multipart = _multipart_fields(body)
            except (TypeError, ValueError) as exc:
                problems.append(("body", str(exc)))
        elif _is_json(media):
            try:
                payload = orjson.dumps(body)
            except TypeError as exc:
                problems.append(("body", f"not JSON-serialisable: {exc}"))
            out_headers["Content-Type"] = JSON_MEDIA
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
            out_headers["Content-Type"] = media
        elif isinstance(body, str):
            payload = body.encode()
            out_headers["Content-Type"] = media
        else:
            problems.append(("body", f"expected bytes or str for {media}"))

    if problems:
        raise RequestValidationError(op.operation_id, problems)

    url = base_url.rstrip("/") + path
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
    if has_multipart and (json_media is None or _looks_like_files(body)):
        return MULTIPART_MEDIA
    if json_media is not None:
        return json_media
    return media_types[0] if media_types else JSON_MEDIA


def _looks_like_files(body: Any) -> bool:
    if not isinstance(body, Mapping):
        return False
    return any(
        isinstance(v, (bytes, bytearray, PurePath, tuple)) or hasattr(v, "read")
        for v in body.values()
    )


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
    other media types are returned as ``str`` (text) or ``bytes``.
    """
    status = raw.status
    if status >= 400 or status < 200:
        body = raw.body
        data: Any = None
        if body and _is_json(raw.content_type or JSON_MEDIA):
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = body.decode("utf-8", "replace")
        elif body:
            data = body.decode("utf-8", "replace")
        raise api_error_for_status(status)(
            status,
            op.operation_id,
            request.method,
            request.url,
            error_message(body),
            data,
            raw.headers,
        )
    if raw.stream is not None:
        return raw.stream
    body = raw.body
    if status == 204 or not body:
        return None
    content_type = raw.content_type
    if not content_type or _is_json(content_type):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if content_type:
                raise ResponseValidationError(
                    op.operation_id,
                    status,
                    [("", f"the body is not valid JSON ({exc}); {len(body)} bytes")],
                ) from None
            return body
    if content_type.startswith("text/"):
        return body.decode("utf-8", "replace")
    return body
