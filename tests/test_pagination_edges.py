"""Paging edge cases the fake Platform does not produce, on a loopback server of this module.

Servers that ignore ``offset``, repeat or cycle page tokens, answer empty pages while claiming
more, lie about their totals, ignore ``max``, or page without any total; GA4GH-style tokens.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tower_async import ApiError, Tower
from tower_async.pagination import MAX_EMPTY_TOKEN_PAGES, PaginationError

TOKEN = "edge-token"


def _op(op_id: str, params: list[str], props: dict[str, Any]) -> dict[str, Any]:
    kinds = {"max": "integer", "offset": "integer", "pageSize": "integer", "page_size": "integer"}
    return {
        "get": {
            "operationId": op_id,
            "parameters": [
                {"name": p, "in": "query", "schema": {"type": kinds.get(p, "string")}}
                for p in params
            ],
            "responses": {
                "200": {
                    "description": "ok",
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": props}}
                    },
                }
            },
        }
    }


THINGS = {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}
TOTAL = {"type": "integer", "format": "int64"}
TOKEN_PROP = {"type": "string", "nullable": True}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.1",
    "info": {"title": "paging edges", "version": "1.0.0"},
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "integer"}}}},
    },
    "paths": {
        "/short": _op("ListShort", ["max", "offset"], {"things": THINGS}),
        "/total": _op("ListTotal", ["max", "offset"], {"things": THINGS, "totalSize": TOTAL}),
        "/more": _op(
            "ListMore", ["max", "offset"], {"things": THINGS, "hasMore": {"type": "boolean"}}
        ),
        "/tokens": _op(
            "ListTokens",
            ["pageSize", "nextPageToken"],
            {"things": THINGS, "nextPageToken": TOKEN_PROP},
        ),
        "/wes": _op(
            "ListWes",
            ["page_size", "page_token"],
            {"runs": THINGS, "next_page_token": {"type": "string"}},
        ),
    },
}


@dataclass
class Edge:
    """What the server does; tests set the fields before iterating."""

    url: str = ""
    n: int = 0  # items that exist
    mode: str = "ok"
    seen: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0

    def things(self, start: int, stop: int) -> list[dict[str, int]]:
        return [{"id": i} for i in range(max(start, 0), min(stop, self.n))]


def _ints(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    state = Edge()

    async def record(request: web.Request) -> None:
        state.seen.append(dict(request.query))
        assert request.headers.get("Authorization") == f"Bearer {TOKEN}"
        if state.delay:
            await asyncio.sleep(state.delay)

    async def short(request: web.Request) -> web.Response:
        await record(request)
        mx, off = _ints(request, "max", 50), _ints(request, "offset", 0)
        if state.mode == "fail-second" and off > 0:
            return web.json_response({"message": "boom"}, status=400)
        return web.json_response({"things": state.things(off, off + mx)})

    async def total(request: web.Request) -> web.Response:
        await record(request)
        mx, off = _ints(request, "max", 50), _ints(request, "offset", 0)
        if state.mode == "stuck":  # ignores the offset
            return web.json_response({"things": state.things(0, mx), "totalSize": 1000})
        if state.mode == "lying":  # always claims a thousand more
            return web.json_response(
                {"things": state.things(off, off + mx), "totalSize": off + 1000}
            )
        if state.mode == "greedy":  # ignores max
            return web.json_response(
                {"things": state.things(off, off + 2 * mx), "totalSize": state.n}
            )
        if state.mode == "capped":  # at most 3 per page, whatever max says
            return web.json_response(
                {"things": state.things(off, off + min(mx, 3)), "totalSize": state.n}
            )
        return web.json_response({"things": state.things(off, off + mx), "totalSize": state.n})

    async def more(request: web.Request) -> web.Response:
        await record(request)
        mx, off = _ints(request, "max", 50), _ints(request, "offset", 0)
        if state.mode == "empty-more":
            return web.json_response({"things": [], "hasMore": True})
        page = state.things(off, off + mx)
        return web.json_response({"things": page, "hasMore": off + len(page) < state.n})

    async def tokens(request: web.Request) -> web.Response:
        await record(request)
        size = _ints(request, "pageSize", 100)
        tok = request.query.get("nextPageToken")
        start = int(tok[1:]) if tok and tok[1:].isdigit() else 0
        page = state.things(start, start + size)
        nxt: str | None = f"t{start + size}" if start + size < state.n else None
        if state.mode == "same":
            nxt = "t5"
        elif state.mode == "cycle":
            nxt = {None: "A", "A": "B", "B": "A"}[tok]
            page = state.things(0, 1)
        elif state.mode == "empty":
            page, nxt = [], f"t{start + 1}"
        elif state.mode == "sparse" and (start // size) % 2:
            page = []  # every other page empty, tokens still advance
        return web.json_response({"things": page, "nextPageToken": nxt})

    async def wes(request: web.Request) -> web.Response:
        await record(request)
        size = _ints(request, "page_size", 100)
        tok = request.query.get("page_token")
        start = int(tok) if tok else 0
        nxt = str(start + size) if start + size < state.n else ""
        return web.json_response(
            {"runs": state.things(start, start + size), "next_page_token": nxt}
        )

    app = web.Application()
    app.router.add_get("/short", short)
    app.router.add_get("/total", total)
    app.router.add_get("/more", more)
    app.router.add_get("/tokens", tokens)
    app.router.add_get("/wes", wes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def tw(edge: Edge, tmp_path: Path) -> AsyncIterator[Tower]:
    async with Tower(
        spec=DOCUMENT, token=TOKEN, endpoint=edge.url, cache_dir=tmp_path, rate_limit=None
    ) as session:
        yield session


async def collect(it: AsyncIterator[Any], bound: int = 5000) -> list[Any]:
    out: list[Any] = []
    async for x in it:
        out.append(x)
        assert len(out) <= bound, "iteration did not stop"
    return out


PS = 10


# -- no total, no hasMore: the short page ends it -------------------------------------------------


@pytest.mark.parametrize(
    ("n", "pages"), [(0, 1), (1, 1), (PS - 1, 1), (PS, 2), (PS + 1, 2), (3 * PS + 7, 4)]
)
async def test_short_page_ends_a_list_without_total(
    edge: Edge, tw: Tower, n: int, pages: int
) -> None:
    edge.n = n
    it = tw.list_short.items(page_size=PS)
    assert [t["id"] for t in await collect(it)] == list(range(n))
    assert it.pages_fetched == pages and it.total is None  # n == PS: one empty page confirms
    assert [int(q["offset"]) for q in edge.seen] == [PS * i for i in range(pages)]


@pytest.mark.parametrize("n", [0, 1, PS - 1, PS, PS + 1, 3 * PS + 7])
async def test_token_pages_exact_at_boundaries(edge: Edge, tw: Tower, n: int) -> None:
    edge.n = n
    it = tw.list_tokens.items(page_size=PS)
    assert [t["id"] for t in await collect(it)] == list(range(n))
    assert it.pages_fetched == max(1, -(-n // PS))
    assert "nextPageToken" not in edge.seen[0]
    assert all(q["pageSize"] == str(PS) for q in edge.seen)


@pytest.mark.parametrize("n", [0, 1, PS, PS + 1, 45])
async def test_ga4gh_style_tokens_end_on_empty_token(edge: Edge, tw: Tower, n: int) -> None:
    edge.n = n
    it = tw.list_wes.items(page_size=PS)
    assert [t["id"] for t in await collect(it)] == list(range(n))
    assert it.pages_fetched == max(1, -(-n // PS))


async def test_token_max_items_and_start_token(edge: Edge, tw: Tower) -> None:
    edge.n = 100
    it = tw.list_tokens.items(page_size=PS, max_items=25, next_page_token="t40")
    assert [t["id"] for t in await collect(it)] == list(range(40, 65))
    assert [q["pageSize"] for q in edge.seen] == ["10", "10", "5"]


# -- pages that do not advance -----------------------------------------------------------------


async def test_offset_ignored_raises(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 50, "stuck"
    got: list[Any] = []
    with pytest.raises(PaginationError, match="ListTotal: the page at offset 10 repeats") as exc:
        async for thing in tw.list_total.items(page_size=PS):
            got.append(thing)
    assert exc.value.operation_id == "ListTotal"
    assert len(got) == PS and len(edge.seen) == 2


async def test_empty_page_with_has_more_raises(edge: Edge, tw: Tower) -> None:
    edge.mode = "empty-more"
    with pytest.raises(PaginationError, match="ListMore: empty page at offset 0 while hasMore"):
        await collect(tw.list_more.items(page_size=PS))
    assert len(edge.seen) == 1


@pytest.mark.parametrize("mode", ["same", "cycle"])
async def test_repeated_token_raises(edge: Edge, tw: Tower, mode: str) -> None:
    edge.n, edge.mode = 100, mode
    with pytest.raises(PaginationError, match=r"ListTokens: page token .* already used"):
        await collect(tw.list_tokens.pages(page_size=PS))
    assert len(edge.seen) <= 3


async def test_endless_empty_token_pages_raise(edge: Edge, tw: Tower) -> None:
    edge.mode = "empty"
    with pytest.raises(PaginationError, match="empty pages in a row"):
        await collect(tw.list_tokens.items(page_size=PS))
    assert len(edge.seen) == MAX_EMPTY_TOKEN_PAGES + 1


async def test_sparse_token_pages_are_fine(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 60, "sparse"
    got = [t["id"] for t in await collect(tw.list_tokens.items(page_size=PS))]
    assert got == [i for i in range(60) if (i // PS) % 2 == 0]


# -- totals that lie, servers that cap or ignore max ---------------------------------------------


async def test_total_that_keeps_growing_stops_on_empty_page(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 33, "lying"
    it = tw.list_total.items(page_size=PS)
    assert len(await collect(it)) == 33
    assert it.pages_fetched == 5 and it.total == 1033  # the last page's claim, reported as is


async def test_server_cap_is_followed_by_total(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 10, "capped"
    it = tw.list_total.pages(page_size=PS)
    assert [len(p["things"]) for p in await collect(it)] == [3, 3, 3, 1]
    assert [int(q["offset"]) for q in edge.seen] == [0, 3, 6, 9]


async def test_server_ignoring_max_is_cut_to_max_items(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 100, "greedy"
    pages = tw.list_total.pages(page_size=PS, max_items=15)
    got = await collect(pages)
    assert [len(p["things"]) for p in got] == [15]  # 20 came back; 15 handed over
    assert len(pages.last_page["things"]) == 20 and pages.items_seen == 15
    items = await collect(tw.list_total.items(page_size=PS, max_items=25))
    assert [t["id"] for t in items] == list(range(25))


# -- prefetch: overlap, errors -----------------------------------------------------------------


async def test_prefetch_requests_the_next_page_before_it_is_asked_for(
    edge: Edge, tw: Tower
) -> None:
    edge.n = 35
    async with tw.list_total.items(page_size=PS, prefetch=True) as it:
        first = await it.__anext__()
        assert first == {"id": 0}
        await asyncio.sleep(0.05)
        assert len(edge.seen) == 2  # page 2 requested while item 0 is being processed
        rest = await collect(it)
    assert [t["id"] for t in rest] == list(range(1, 35))
    assert len(edge.seen) == 4  # and nothing past the end


async def test_prefetch_failure_surfaces_on_the_next_page(edge: Edge, tw: Tower) -> None:
    edge.n, edge.mode = 35, "fail-second"
    got: list[Any] = []
    it = tw.list_short.items(page_size=PS, prefetch=True)
    with pytest.raises(ApiError) as exc:
        async for thing in it:
            got.append(thing)
    assert exc.value.status == 400
    assert len(got) == PS
    # the failed page was not consumed: the iterator can resume once the server recovers
    edge.mode = "ok"
    assert [t["id"] for t in await collect(it)] == list(range(PS, 35))


async def test_prefetch_failure_after_close_is_silent(
    edge: Edge, tw: Tower, caplog: pytest.LogCaptureFixture
) -> None:
    edge.n, edge.mode = 35, "fail-second"
    async with tw.list_short.pages(page_size=PS, prefetch=True) as pages:
        await pages.__anext__()
        await asyncio.sleep(0.05)  # the prefetch has failed by now
    del pages
    gc.collect()
    assert "never retrieved" not in caplog.text
