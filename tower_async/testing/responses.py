"""Answers of the fake Platform: errors, rendered JSON payloads, dropped connections."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .render import strip_nulls

__all__ = ["JSON", "JsonResponse", "abort", "client_gone", "error_response", "render_result"]

JSON = "application/json"


class JsonResponse(web.Response):
    """A 200 JSON answer that keeps the payload it was encoded from (for drift faults)."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.data = orjson.dumps(payload)
        super().__init__(body=self.data, content_type=JSON)


def error_response(status: int, message: str | None) -> web.Response:
    """``status`` with ``{"message"}`` (no body when ``message`` is None)."""
    if message is None:
        return web.Response(status=status)
    return web.Response(status=status, body=orjson.dumps({"message": message}), content_type=JSON)


def render_result(result: Any, *, emit_nulls: bool) -> web.StreamResponse:
    """The answer of a handler's result: a prepared response as is, None as 204, else the
    JSON payload (null members dropped, as the Platform does, unless ``emit_nulls``)."""
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    return JsonResponse(result if emit_nulls else strip_nulls(result))


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def abort(request: web.Request) -> web.Response:
    """Close the connection without an answer (the 499 is never sent)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=499)
