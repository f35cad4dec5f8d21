"""A loopback aiohttp.web server implementing tests/data/tiny-api.yaml (the tests' own API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

TINY_SPEC = Path(__file__).parent / "data" / "tiny-api.yaml"
TOKEN = "tiny-secret-token-6f1d2c"


@dataclass
class Seen:
    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Tiny:
    url: str
    seen: list[Seen] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before succeeding


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


@asynccontextmanager
async def tiny_server() -> AsyncIterator[Tiny]:
    tiny = Tiny(url="")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.content_type != "multipart/form-data" else b""
        tiny.seen.append(
            Seen(
                request.method,
                request.path,
                request.raw_path,
                list(request.query.items()),
                dict(request.headers),
                body,
            )
        )
        if request.path != "/ping" and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=403)
        if tiny.fail_next:
            status = tiny.fail_next.pop(0)
            return _json({"message": f"injected {status}"}, status=status)
        return await handler(request)

    async def ping(request: web.Request) -> web.Response:
        return _json({"pong": True})

    async def list_items(request: web.Request) -> web.Response:
        items = [{"id": i, "name": f"item-{i}", "kind": "tool"} for i in range(3)]
        return _json({"items": items, "totalSize": 3})

    async def create_item(request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"message": "bad json"}, status=400)
        if not data.get("name"):
            return _json({"message": "name is required"}, status=400)
        return _json({"id": 17}, status=201)

    async def get_item(request: web.Request) -> web.Response:
        item_id = int(request.match_info["itemId"])
        if item_id == 404:
            return _json({"message": "no such item"}, status=404)
        return _json({"id": item_id, "name": "spanner", "kind": "tool"})

    async def delete_item(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def read_file(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(2000):
            await response.write(f"line {i} of {request.match_info['filePath']}\n".encode())
            if i % 500 == 0:
                await asyncio.sleep(0)
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert part is not None
        data = await part.read()  # type: ignore[union-attr]
        return _json(
            {
                "size": len(data),
                "filename": part.filename,  # type: ignore[union-attr]
                "field": part.name,  # type: ignore[union-attr]
                "type": part.headers.get("Content-Type"),
            }
        )

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if code == 403:
            return web.Response(status=403)
        headers = {"Retry-After": "3600"} if code == 429 else None
        return _json({"message": f"status {code}"}, status=code, headers=headers)

    app = web.Application(middlewares=[record])
    app.router.add_get("/ping", ping)
    app.router.add_get("/items", list_items)
    app.router.add_post("/items", create_item)
    app.router.add_get("/items/{itemId}", get_item)
    app.router.add_delete("/items/{itemId}", delete_item)
    app.router.add_get("/files/{filePath:.+}", read_file)
    app.router.add_post("/uploads", upload)
    app.router.add_get("/status/{code}", status)
    async with serve_app(app) as url:
        tiny.url = url
        yield tiny


@asynccontextmanager
async def serve_app(app: web.Application, ssl: Any = None) -> AsyncIterator[str]:
    """Serve ``app`` on a loopback port (HTTPS with an ``ssl.SSLContext``); yields its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if ssl is not None else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
