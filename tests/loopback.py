"""Tiny scriptable loopback servers for the hostile-response tests (issue 11).

``serve(handler)`` runs an aiohttp.web server on 127.0.0.1 (a random port) whose every
request goes to ``handler`` and is recorded in ``server.seen`` (method, path, headers), so a
test can assert what a second server did *not* receive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tower_async import Tower

from .conftest import spec_path

TOKEN = "hostile-test-token-9c1e"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)


async def ok_json(request: web.Request) -> web.Response:
    return web.Response(body=b"{}", content_type="application/json")


@asynccontextmanager
async def serve(handler: Handler = ok_json) -> AsyncIterator[Server]:
    server = Server(url="", port=0)

    async def entry(request: web.Request) -> web.StreamResponse:
        server.seen.append(Seen(request.method, request.raw_path, dict(request.headers)))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", entry)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=0.5
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    server.port = int(sockets[0].getsockname()[1])
    server.url = f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def _op(operation_id: str, media: str = "application/json", **extra: Any) -> dict[str, Any]:
    content = {media: {"schema": {"type": "string"} if media != "application/json" else {}}}
    return {
        "operationId": operation_id,
        "responses": {"200": {"description": "ok", "content": content}},
        **extra,
    }


def document(paths: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A small OpenAPI document: UserInfo, workspaces, a JSON listing, a launch, a log."""
    user_path = {"name": "userId", "in": "path", "required": True, "schema": {"type": "integer"}}
    wf_path = {"name": "workflowId", "in": "path", "required": True, "schema": {"type": "string"}}
    doc: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": "hostile", "version": "1.0.0"},
        "components": {"securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"BearerAuth": []}],
        "paths": {
            "/user-info": {"get": _op("UserInfo")},
            "/user/{userId}/workspaces": {"get": _op("ListWorkspacesUser", parameters=[user_path])},
            "/things": {"get": _op("ListThings")},
            "/workflow/launch": {
                "post": _op(
                    "CreateWorkflowLaunch",
                    requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
                )
            },
            "/workflow/{workflowId}/download": {
                "get": _op("DownloadWorkflowLog", "text/plain", parameters=[wf_path])
            },
        },
    }
    doc["paths"].update(paths or {})
    return doc


def json_response(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


@pytest.fixture(name="server")
async def server_fixture() -> AsyncIterator[Server]:
    """A loopback server answering ``200 {}`` to everything, recording what it saw."""
    async with serve() as srv:
        yield srv


@pytest.fixture(name="published")
async def published_fixture(server: Server, shared_cache_dir: Path) -> AsyncIterator[Tower]:
    """A session on the published 1.181.0 document whose endpoint is ``server``."""
    async with Tower(
        spec=spec_path("1.181.0"),
        token=TOKEN,
        endpoint=server.url,
        cache_dir=shared_cache_dir,
        rate_limit=None,
        validate_document=False,
    ) as tw:
        yield tw
