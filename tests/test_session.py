"""The session against a loopback server implementing the tests' own small API (issue 2).

Binding this document proves nothing in the library is Platform-specific.
"""

from __future__ import annotations

import io
import logging
import pydoc
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tower_async import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RequestValidationError,
    ServerError,
    Tower,
    TowerError,
    TransportError,
    Unauthorized,
)
from tower_async.retries import RetryPolicy

from .tiny_server import TINY_SPEC, TOKEN, Tiny, tiny_server


@pytest.fixture
async def tiny() -> AsyncIterator[Tiny]:
    async with tiny_server() as server:
        yield server


@pytest.fixture
async def tw(tiny: Tiny, cache_dir: Path) -> AsyncIterator[Tower]:
    async with Tower(
        spec=TINY_SPEC, token=TOKEN, endpoint=tiny.url, cache_dir=cache_dir, rate_limit=None
    ) as session:
        yield session


def _no_retry(tiny: Tiny, cache_dir: Path) -> Tower:
    """A session on the tiny server that shows every error as it comes (no retries)."""
    return Tower(
        spec=TINY_SPEC,
        token=TOKEN,
        endpoint=tiny.url,
        cache_dir=cache_dir,
        rate_limit=None,
        retry=RetryPolicy(max_attempts=1),
    )


async def test_calls_route_parameters_as_documented(tw: Tower, tiny: Tiny) -> None:
    assert await tw.get_ping() == {"pong": True}
    assert "Authorization" not in tiny.seen[-1].headers  # security: [] on this operation
    page = await tw.list_items(
        max=2,
        offset=4,
        tags=["a b", "c"],
        fields=["id", "name"],
        kind="tool",
        verbose=True,
        x_trace_id="trace-1",
    )
    assert page["totalSize"] == 3 and len(page["items"]) == 3
    seen = tiny.seen[-1]
    assert seen.query == [
        ("max", "2"),
        ("offset", "4"),
        ("tags", "a b"),
        ("tags", "c"),
        ("fields", "id,name"),
        ("kind", "tool"),
        ("verbose", "true"),
    ]
    assert seen.headers["X-Trace-Id"] == "trace-1"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["User-Agent"].startswith("tower-async/")
    # the spec's own names, tw.call and the operations mapping reach the same operation
    assert await tw.call("listItems", **{"X-Trace-Id": "t2"}) == page
    assert tiny.seen[-1].headers["X-Trace-Id"] == "t2"
    assert tw.operations["listItems"].method == "GET"
    assert tw.operation("listItems") is tw.list_items


async def test_json_body_204_and_path_encoding(tw: Tower, tiny: Tiny) -> None:
    assert await tw.create_item(body={"name": "hammer", "kind": "tool"}) == {"id": 17}
    assert tiny.seen[-1].body == b'{"name":"hammer","kind":"tool"}'
    assert tiny.seen[-1].headers["Content-Type"] == "application/json"
    assert await tw.delete_item(item_id=5) is None
    assert (tiny.seen[-1].method, tiny.seen[-1].path) == ("DELETE", "/items/5")
    item = await tw.get_item(item_id="12")  # digits in a string are accepted for integers
    assert item == {"id": 12, "name": "spanner", "kind": "tool"}


async def test_text_download_is_streamed(tw: Tower, tiny: Tiny) -> None:
    body = await tw.read_file(file_path="logs/run 1.txt")
    assert tiny.seen[-1].raw_path == "/files/logs/run%201.txt"  # slashes kept, space encoded
    assert not body.closed
    lines = [line async for line in body.iter_lines()]
    assert len(lines) == 2000
    assert lines[0] == "line 0 of logs/run 1.txt"
    # read whole on demand, in chunks on demand
    async with await tw.read_file(file_path="x") as whole:
        text = await whole.text()
    assert text.count("\n") == 2000
    chunks = [c async for c in (await tw.read_file(file_path="x")).iter_chunked(1024)]
    assert sum(len(c) for c in chunks) == len(text.encode())
    # an early stop releases the connection instead of reading the rest
    async with await tw.read_file(file_path="x") as early:
        async for _line in early.iter_lines():
            break
    assert early.closed


async def test_multipart_upload_from_bytes_path_and_file(
    tw: Tower, tiny: Tiny, tmp_path: Path
) -> None:
    got = await tw.upload_file(body={"file": ("samples.csv", b"a,b\n1,2\n", "text/csv")})
    assert got == {"size": 8, "filename": "samples.csv", "field": "file", "type": "text/csv"}
    path = tmp_path / "sheet.tsv"
    path.write_bytes(b"x" * 10_000)
    got = await tw.upload_file(body={"file": path})
    assert (got["size"], got["filename"]) == (10_000, "sheet.tsv")
    got = await tw.upload_file(body={"file": io.BytesIO(b"12345")})
    assert got["size"] == 5


@pytest.mark.parametrize(
    ("code", "cls", "message"),
    [
        (400, BadRequest, "status 400"),
        (401, Unauthorized, "status 401"),
        (403, Forbidden, None),
        (404, NotFound, "status 404"),
        (409, Conflict, "status 409"),
        (418, ClientError, "status 418"),
        (429, RateLimited, "status 429"),
        (500, ServerError, "status 500"),
        (502, ServerError, "status 502"),
    ],
)
async def test_every_error_class(
    tiny: Tiny, cache_dir: Path, code: int, cls: type[ApiError], message: str | None
) -> None:
    async with _no_retry(tiny, cache_dir) as tw:
        with pytest.raises(cls) as info:
            await tw.get_status(code=code)
    err = info.value
    assert type(err) is cls
    assert (err.status, err.operation_id, err.method) == (code, "getStatus", "GET")
    assert err.url == f"{tiny.url}/status/{code}"
    assert err.message == message
    if code == 429:
        assert isinstance(err, RateLimited) and err.retry_after == 3600


async def test_not_found_carries_the_platform_message(tw: Tower) -> None:
    with pytest.raises(NotFound, match="no such item") as info:
        await tw.get_item(item_id=404)
    assert info.value.body == {"message": "no such item"}


async def test_bad_input_raises_before_any_request(tw: Tower, tiny: Tiny) -> None:
    before = len(tiny.seen)
    with pytest.raises(RequestValidationError, match="listItems") as info:
        await tw.list_items(maxx=3)
    assert "'max'" in str(info.value)  # close match suggested
    with pytest.raises(RequestValidationError, match=r"path.itemId: missing required"):
        await tw.get_item()
    with pytest.raises(RequestValidationError, match=r"query.max: expected an integer"):
        await tw.list_items(max="ten")
    with pytest.raises(RequestValidationError, match=r"query.kind: 'gadget' is not one of"):
        await tw.list_items(kind="gadget")
    with pytest.raises(RequestValidationError, match=r"query.verbose: expected a boolean"):
        await tw.list_items(verbose="yes")
    with pytest.raises(RequestValidationError, match="missing required request body"):
        await tw.create_item()
    with pytest.raises(RequestValidationError, match="takes no request body"):
        await tw.get_ping(body={"x": 1})
    with pytest.raises(RequestValidationError, match="createItem"):
        await tw.create_item(body={"kind": "tool"})  # the document requires "name"
    assert len(tiny.seen) == before


async def test_introspection_dir_help_and_unknown_names(tw: Tower) -> None:
    names = dir(tw)
    for name in ("list_items", "get_item", "create_item", "upload_file", "get_ping"):
        assert name in names
    text = pydoc.render_doc(tw.list_items, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    assert "List items" in text and "Lists the inventory" in text
    assert "tags (query, array of string, optional)" in text
    with pytest.raises(AttributeError, match="list_items"):
        _ = tw.list_itemz
    assert tw.list_items is tw.list_items  # one bound method per session


async def test_lifecycle_external_session_and_double_close(tiny: Tiny, cache_dir: Path) -> None:
    async with aiohttp.ClientSession() as http:
        tw = Tower(
            spec=TINY_SPEC, token=TOKEN, endpoint=tiny.url, cache_dir=cache_dir, session=http
        )
        with pytest.raises(AttributeError, match="bound when the session opens"):
            _ = tw.get_ping
        async with tw:
            assert tw.http is http
            assert await tw.get_ping() == {"pong": True}
        assert not http.closed  # the caller's session is left open
        await tw.close()  # closing twice is harmless
        with pytest.raises(TowerError, match="not open"):
            await tw.get_ping()
    own = Tower(spec=TINY_SPEC, token=TOKEN, endpoint=tiny.url, cache_dir=cache_dir)
    async with own:
        http2 = own.http
    assert http2.closed


async def test_connection_refused_is_a_transport_error_not_processed(cache_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    async with Tower(
        spec=TINY_SPEC,
        token=TOKEN,
        endpoint=f"http://127.0.0.1:{port}",
        cache_dir=cache_dir,
        retry=RetryPolicy(max_attempts=1),
    ) as tw:
        with pytest.raises(TransportError) as info:
            await tw.create_item(body={"name": "x"})
    assert info.value.may_have_been_processed is False
    assert "was not processed" in str(info.value)


async def test_token_never_appears_in_logs_reprs_or_errors(
    tiny: Tiny, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with Tower(
        spec=TINY_SPEC,
        token=TOKEN,
        endpoint=tiny.url,
        cache_dir=cache_dir,
        retry=RetryPolicy(max_attempts=3, budget=None),
    ) as tw:
        texts += [repr(tw), str(tw), repr(tw.list_items), repr(tw.build("listItems", max=1))]
        tiny.fail_next = [503]  # retried, and the retry is logged
        await tw.list_items()
        for call in (
            tw.get_status(code=404),
            tw.get_status(code=403),
            tw.get_status(code=500),
            tw.list_items(max="x"),
        ):
            with pytest.raises(TowerError) as info:
                await call
            texts += [str(info.value), repr(info.value)]
            if isinstance(info.value, ApiError):
                texts += [repr(info.value.headers), repr(info.value.body)]
    assert any("retry" in r.getMessage().lower() for r in caplog.records)
    texts.append(caplog.text)
    for text in texts:
        assert TOKEN not in text


@pytest.mark.parametrize(
    ("code", "maybe"), [(400, False), (404, False), (429, False), (500, True), (503, False)]
)
async def test_api_errors_say_whether_the_server_may_have_acted(
    tiny: Tiny, cache_dir: Path, code: int, maybe: bool
) -> None:
    async with _no_retry(tiny, cache_dir) as tw:
        with pytest.raises(ApiError) as info:
            await tw.get_status(code=code)
    assert info.value.may_have_been_processed is maybe
