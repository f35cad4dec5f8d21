"""aiohttp middlewares of the fake Platform: what every request goes through.

Outermost first (the order of :meth:`FakeApp.make_app <.app.FakeApp.make_app>`):

1. :func:`error_middleware`: an unhandled exception is answered 500 and kept in
   ``app.errors`` (each one is a bug of the fake); a client that went away gets a 499 it
   never sees, kept in ``app.disconnects``.
2. :func:`auth_middleware`: a known bearer token (else 403), then the token's sliding
   rate window (else 429 with ``Retry-After``).
3. :func:`fault_middleware`: the faults ``app.faults`` picks for the call: before the
   handler (``latency``, ``drop_before``, ``status``), after it (``latency`` with
   ``when="after"``, ``drop_after``) and on the rendered JSON body (``drift``,
   ``truncate``, ``invalid_json``, ``slow_body``), see :mod:`.faults`.
4. :func:`workspace_middleware`: ``workspaceId`` (query, or path for some routes) is a
   number (400), the token may use it (403) and it exists (403).

Each reads the :class:`Route` of the request through ``route_of`` and passes requests of
no route (none today: a catch-all route answers 404) through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from .clock import Clock
from .faults import FaultInjector, FaultSpec, apply_drift, unreadable_body
from .ratewindow import SlidingWindow
from .records import ApiFailure, TokenInfo
from .responses import JSON, JsonResponse, abort, client_gone, error_response
from .routing import Route
from .state import FakeState

__all__ = [
    "NO_FAULTS",
    "Served",
    "auth_middleware",
    "error_middleware",
    "fault_middleware",
    "request_token",
    "request_workspace",
    "workspace_middleware",
]

log = logging.getLogger("tower_async.testing")

#: routes never subject to fault injection (so a client can always bind its document)
NO_FAULTS = frozenset({"OpenApiDocument", "NotFound"})


def _request_key(name: str) -> Any:
    """A typed request key where aiohttp has them (3.12+), else the name."""
    request_key = getattr(web, "RequestKey", None)
    return name if request_key is None else request_key(name, object)


_TOKEN = _request_key("tower_async.testing.token")
_WORKSPACE = _request_key("tower_async.testing.workspace_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RouteOf = Callable[[web.Request], "Route | None"]


class Served(Protocol):
    """What the middlewares read of the app, at each request (a :class:`~.app.FakeApp`)."""

    state: FakeState
    faults: FaultInjector
    rate_clock: Clock
    errors: list[BaseException]
    disconnects: list[str]


def request_token(request: web.Request) -> TokenInfo | None:
    """The token that authenticated the request (None on routes without auth)."""
    token: TokenInfo | None = request.get(_TOKEN)
    return token


def request_workspace(request: web.Request) -> int | None:
    """The request's checked ``workspaceId`` (None: the user's own context)."""
    workspace_id: int | None = request.get(_WORKSPACE)
    return workspace_id


# ---------------------------------------------------------------------------- errors
def _bug(app: Served, route: Route, exc: Exception) -> web.Response:
    log.exception("fake Platform: unhandled error in %s", route.operation_id)
    app.errors.append(exc)
    return error_response(500, f"Internal fake server error: {type(exc).__name__}")


def _went_away(app: Served, route: Route, request: web.Request) -> web.Response:
    log.debug(
        "fake Platform: client went away during %s %s (%s)",
        request.method,
        request.path,
        route.operation_id,
    )
    app.disconnects.append(route.operation_id)
    return web.Response(status=499)


def error_middleware(app: Served, route_of: RouteOf) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        if route is None:
            return await handler(request)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            # never swallowed: server shutdown (or handler_cancellation, if turned on)
            raise
        except ConnectionError as exc:
            # aiohttp does not cancel a handler whose client went away (its default
            # since 3.9, handler_cancellation=False): the next read of the body or
            # write of the answer raises instead. Expected, so quiet; the same error
            # while the client is still there is a bug of the fake.
            if client_gone(request):
                return _went_away(app, route, request)
            return _bug(app, route, exc)
        except Exception as exc:
            return _bug(app, route, exc)

    return errors


# ---------------------------------------------------------------------------- auth, rate
def _authenticate(state: FakeState, request: web.Request) -> TokenInfo | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    return state.tokens.get(value.strip())


def _too_many(wait: float) -> web.Response:
    secs = SlidingWindow.retry_after_seconds(wait)
    resp = error_response(
        429, f"Maximum request rate exceeded. Wait {secs}secs before issuing a new request"
    )
    resp.headers["Retry-After"] = str(secs)
    return resp


def auth_middleware(app: Served, route_of: RouteOf) -> Middleware:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        if route is not None and route.auth:
            token = _authenticate(app.state, request)
            if token is None:
                return web.Response(status=403)
            wait = token.window.hit(app.rate_clock.now())
            if wait is not None:
                return _too_many(wait)
            request[_TOKEN] = token
        return await handler(request)

    return auth


# ---------------------------------------------------------------------------- faults
Fired = dict[str, FaultSpec]


async def _faults_before(fired: Fired, route: Route, request: web.Request) -> web.Response | None:
    """The answer of a fault that fires before the handler, or None to go on."""
    latency = fired.get("latency")
    if latency is not None and (latency.when == "before" or route.streams):
        await asyncio.sleep(latency.delay)
    if "drop_before" in fired:
        return abort(request)
    if "status" in fired:
        status = fired["status"].status
        return error_response(status, f"Fake fault: HTTP {status}")
    return None


async def _faults_after(
    app: Served, fired: Fired, route: Route, request: web.Request, resp: web.StreamResponse
) -> web.StreamResponse:
    """The handler's answer as the faults that fire after it leave it."""
    latency = fired.get("latency")
    if latency is not None and latency.when == "after" and not route.streams:
        # processed (state changed); the answer is late: the client may give up first
        await asyncio.sleep(latency.delay)
        if client_gone(request):
            return _went_away(app, route, request)
    if "drop_after" in fired:
        return abort(request)
    if "unreadable" in fired and 200 <= resp.status < 300 and not route.streams:
        # processed (and succeeded), then a 200 the client cannot read
        body, content_type = unreadable_body(fired["unreadable"])
        return web.Response(status=200, body=body, content_type=content_type)
    if not isinstance(resp, JsonResponse):
        return resp  # errors, 204s and streamed answers keep their body
    return await _body_faults(fired, request, resp)


async def _send_slowly(request: web.Request, body: bytes, spec: FaultSpec) -> web.StreamResponse:
    slow = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    slow.content_length = len(body)
    await slow.prepare(request)
    for i in range(0, len(body), spec.chunk):
        await slow.write(body[i : i + spec.chunk])
        if i + spec.chunk < len(body):
            await asyncio.sleep(spec.delay)
    await slow.write_eof()
    return slow


async def _body_faults(
    fired: Fired, request: web.Request, resp: JsonResponse
) -> web.StreamResponse:
    """Faults on a rendered JSON answer: ``drift`` of the payload, then what is sent."""
    if "drift" in fired:
        resp = JsonResponse(apply_drift(resp.payload, fired["drift"]))
    body = resp.data
    if "truncate" in fired:
        partial = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        partial.content_length = len(body)
        await partial.prepare(request)
        await partial.write(body[: len(body) // 2])
        return abort(request)
    if "invalid_json" in fired:
        return web.Response(body=body[: max(1, len(body) // 2)], content_type=JSON)
    if "slow_body" in fired:
        return await _send_slowly(request, body, fired["slow_body"])
    return resp


def fault_middleware(app: Served, route_of: RouteOf) -> Middleware:
    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        injector = app.faults
        if route is None or not injector.rules or route.operation_id in NO_FAULTS:
            return await handler(request)
        fired: Fired = {f.kind: f for f in injector.pick(route.operation_id, request.path)}
        early = await _faults_before(fired, route, request)
        if early is not None:
            return early
        resp = await handler(request)
        return await _faults_after(app, fired, route, request, resp)

    return faults


# ---------------------------------------------------------------------------- workspaces
def _checked_workspace(state: FakeState, route: Route, request: web.Request) -> int | None:
    raw = (
        request.match_info.get("workspaceId")
        if route.workspace_in_path
        else request.query.get("workspaceId")
    )
    if raw is None or raw == "":
        return None
    try:
        workspace_id = int(raw)
    except ValueError:
        raise ApiFailure(400, f"Invalid 'workspaceId' parameter: {raw!r}") from None
    token = request_token(request)
    if token is not None and not token.allows(workspace_id):
        raise ApiFailure(403, f"Access to workspace {workspace_id} is not allowed")
    state.check_workspace(workspace_id)
    return workspace_id


def workspace_middleware(app: Served, route_of: RouteOf) -> Middleware:
    @web.middleware
    async def workspaces(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        if route is not None:
            try:
                request[_WORKSPACE] = _checked_workspace(app.state, route, request)
            except ApiFailure as failure:
                return error_response(failure.status, failure.message)
        return await handler(request)

    return workspaces
