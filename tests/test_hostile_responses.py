"""Hostile responses and where the token goes, over real loopback HTTP (issue 11).

Every test runs a scripted aiohttp.web server on 127.0.0.1 (``tests/loopback.py``); the
"second server" tests assert that another origin never sees a request, let alone the token.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import warnings
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tower_async import Tower, TowerError, TransportError
from tower_async.clock import VirtualClock
from tower_async.errors import (
    OriginError,
    RedirectError,
    ResponseTooLarge,
    ResponseValidationError,
    ServerError,
    SessionClosed,
    SpecError,
)
from tower_async.operations import bind_operations
from tower_async.retries import ExponentialBackoff, RetryPolicy
from tower_async.sansio import Request, build_request
from tower_async.transport import AiohttpTransport
from tower_async.validation import TowerValidationWarning

from .loopback import TOKEN, Server, document, json_response, ok_json, serve


@asynccontextmanager
async def session(server: Server, tmp_path: Path, **options: Any) -> AsyncIterator[Tower]:
    options.setdefault("spec", document())
    async with Tower(
        token=TOKEN,
        endpoint=server.url,
        cache_dir=tmp_path / "cache",
        rate_limit=None,
        validate_document=False,
        **options,
    ) as tw:
        yield tw


def auth_seen(server: Server) -> list[str]:
    return [s.headers["Authorization"] for s in server.seen if "Authorization" in s.headers]


# -- the token goes to the endpoint's origin only ------------------------------------------------


async def test_a_path_without_slash_never_reaches_another_port(tmp_path: Path) -> None:
    async with serve() as second:
        # "http://127.0.0.1:2001" + "7/user-info" was "http://127.0.0.1:20017/user-info"
        port = str(second.port)
        endpoint = f"http://127.0.0.1:{port[:-1]}"
        doc = document({f"{port[-1]}/user-info": {"get": {"operationId": "Sneaky"}}})
        with pytest.raises(SpecError, match="does not start with '/'"):
            # refused when the document is bound (and by build_request, were it bound)
            op = bind_operations(doc)["Sneaky"]
            build_request(op, endpoint, {}, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            async with Tower(
                spec=doc, token=TOKEN, endpoint=endpoint, rate_limit=None,
                cache_dir=tmp_path, validate_document=False,
            ) as tw:  # fmt: skip
                await tw.call("Sneaky")
        except SpecError:
            pass  # refused when the document is bound, or when the call is built
        assert second.seen == []


async def test_a_path_without_slash_never_reaches_another_host(tmp_path: Path) -> None:
    async with serve() as second:
        # "http://127.0.0" + ".1:PORT/user-info" would be the second server
        doc = document({f".1:{second.port}/user-info": {"get": {"operationId": "Sneaky"}}})
        with pytest.raises(SpecError):
            async with Tower(
                spec=doc, token=TOKEN, endpoint="http://127.0.0", rate_limit=None,
                cache_dir=tmp_path, validate_document=False,
            ) as tw:  # fmt: skip
                await tw.call("Sneaky")
        assert second.seen == []


async def test_the_transport_refuses_the_token_for_another_origin() -> None:
    async with serve() as first, serve() as second:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            transport = AiohttpTransport(http, token_origin=("http", "127.0.0.1", first.port))
            leak = Request("Op", "GET", f"{second.url}/x", {"Authorization": f"Bearer {TOKEN}"})
            with pytest.raises(OriginError, match="refusing to send the access token") as info:
                await transport.send(leak)
            assert TOKEN not in str(info.value)
            # without the token, and to the endpoint with it, requests go out
            assert (await transport.send(Request("Op", "GET", f"{second.url}/x", {}))).status == 200
            mine = Request("Op", "GET", f"{first.url}/x", {"Authorization": f"Bearer {TOKEN}"})
            assert (await transport.send(mine)).status == 200
        assert auth_seen(second) == [] and len(second.seen) == 1
        assert auth_seen(first) == [f"Bearer {TOKEN}"]


# -- redirects are refused, never followed ------------------------------------------------------


async def test_a_cross_origin_redirect_is_refused_and_the_other_server_sees_nothing(
    tmp_path: Path,
) -> None:
    async with serve() as second:

        async def redirect(request: web.Request) -> web.Response:
            status = 307 if request.method == "POST" else 302
            return web.Response(status=status, headers={"Location": f"{second.url}/steal?x=1"})

        async with serve(redirect) as first, session(first, tmp_path) as tw:
            with pytest.raises(RedirectError) as info:
                await tw.list_things()
            assert info.value.status == 302
            assert f"redirected to {second.url};" in str(info.value)
            assert "steal" not in str(info.value)  # only the origin is named
            assert info.value.location == f"{second.url}/steal?x=1"
            with pytest.raises(RedirectError) as launch:
                await tw.create_workflow_launch(body={"launch": {"pipeline": "x"}})
            assert launch.value.status == 307
            assert [s.method for s in first.seen] == ["GET", "POST"]
        assert second.seen == []


async def test_a_redirect_loop_costs_one_request(tmp_path: Path) -> None:
    async def loop(request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "/things"})

    async with serve(loop) as server, session(server, tmp_path) as tw:
        with pytest.raises(RedirectError, match=r"redirected to http://127\.0\.0\.1"):
            await tw.list_things()
        assert len(server.seen) == 1


# -- the buffered size cap ------------------------------------------------------------------------


def _gzip_bomb(decompressed: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(decompressed // len(block))]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    # ~100 KB on the wire, 100 MB inflated: 12x the cap below (a full inflate would show in
    # the peak), and compressed in 0.3 s rather than the 1.6 s of 600 MB
    return _gzip_bomb(100 * 1024 * 1024)


async def test_a_gzip_bomb_stops_at_the_cap_without_ballooning(tmp_path: Path, bomb: bytes) -> None:
    assert len(bomb) < 1024 * 1024

    async def bombing(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    cap = 8 * 1024 * 1024
    async with serve(bombing) as server, session(server, tmp_path, max_response_bytes=cap) as tw:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge, match=f"max_response_bytes={cap}") as info:
                await tw.list_things()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert isinstance(info.value, TowerError) and info.value.operation_id == "ListThings"
        assert peak < 4 * cap  # the cap's worth plus chunks, not 100 MB
        assert len(server.seen) == 1  # not retried


async def test_the_default_cap_and_small_bodies(tmp_path: Path) -> None:
    payload = gzip.compress(b'{"items": [' + b"1," * 1000 + b"1]}")

    async def small(request: web.Request) -> web.Response:
        return web.Response(
            body=payload, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    async with serve(small) as server, session(server, tmp_path) as tw:
        assert tw.max_response_bytes == 64 * 1024 * 1024
        data = await tw.list_things()
        assert len(data["items"]) == 1001
    async with serve(small) as server, session(server, tmp_path, max_response_bytes=100) as tw:
        with pytest.raises(ResponseTooLarge):
            await tw.list_things()


# -- 2xx that do not match the document ---------------------------------------------------------


ODD_BODIES: dict[str, tuple[bytes, str | None, type | tuple[type, ...]]] = {
    "html": (b"<html>hi</html>", "text/html", str),
    "empty": (b"", "application/json", type(None)),
    "no-content-type": (b"not json at all", None, bytes),
    "broken-json": (b'{"a', "application/json", str),
}


@pytest.mark.parametrize("kind", sorted(ODD_BODIES))
async def test_a_2xx_off_the_document_warns_or_raises(tmp_path: Path, kind: str) -> None:
    body, media, shape = ODD_BODIES[kind]

    async def odd(request: web.Request) -> web.Response:
        response = web.Response(body=body)
        if media is None:
            response.headers.popall("Content-Type", None)
        else:
            response.headers["Content-Type"] = media
        return response

    async with serve(odd) as server, session(server, tmp_path, validation="strict") as tw:
        with pytest.raises(ResponseValidationError, match="does not match the document") as info:
            await tw.list_things()
        assert info.value.status == 200 and info.value.operation_id == "ListThings"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = await tw.list_things(validation="warn")
        assert isinstance(data, shape)
        assert any(issubclass(w.category, TowerValidationWarning) for w in caught)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert isinstance(await tw.list_things(validation="off"), shape)


@pytest.mark.parametrize("answer", [b"{}", b"<html>login</html>", b'{"user": []}', b"[]"])
async def test_workspace_by_name_reads_user_info_defensively(tmp_path: Path, answer: bytes) -> None:
    async def user_info(request: web.Request) -> web.Response:
        media = "text/html" if answer.startswith(b"<") else "application/json"
        return web.Response(body=answer, headers={"Content-Type": media})

    async with serve(user_info) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TowerValidationWarning)
            with pytest.raises(ResponseValidationError, match="UserInfo"):
                async with session(server, tmp_path, workspace="org/ws"):
                    pass


async def test_workspace_listing_with_junk_entries(tmp_path: Path) -> None:
    async def api(request: web.Request) -> web.Response:
        if request.path == "/user-info":
            return json_response({"user": {"id": "12"}})
        junk: list[Any] = [1, "x", None, {"orgName": "org", "workspaceName": "ws"}]
        junk.append({"orgName": "org", "workspaceName": "ws", "workspaceId": "abc"})
        return json_response({"orgsAndWorkspaces": junk})

    async with serve(api) as server:
        with pytest.raises(ResponseValidationError, match="integer id"):
            async with session(server, tmp_path, workspace="org/ws"):
                pass


# -- Retry-After, deadlines and bodies that never end ----------------------------------------


async def test_a_503_asking_for_59s_gives_up_at_the_deadline(tmp_path: Path) -> None:
    async def unavailable(request: web.Request) -> web.Response:
        return json_response({"message": "down"}, status=503, **{"Retry-After": "59"})

    async with serve(unavailable) as server, session(server, tmp_path, deadline=5) as tw:
        with pytest.raises(ServerError):
            await tw.list_things()
        assert len(server.seen) == 1  # the 59 s wait would end past the 5 s deadline


async def test_garbage_retry_after_is_bounded(tmp_path: Path) -> None:
    async def throttled(request: web.Request) -> web.Response:
        return json_response({"message": "slow down"}, status=429, **{"Retry-After": "nan"})

    policy = RetryPolicy(max_attempts=3)
    clock = VirtualClock()  # the waits between attempts, on virtual time
    async with (
        serve(throttled) as server,
        session(server, tmp_path, retry=policy, clock=clock) as tw,
    ):
        with pytest.raises(TowerError) as info:
            await tw.list_things()
        assert info.value.status == 429  # type: ignore[attr-defined]
        assert len(server.seen) == 3  # counted towards max_attempts, not 50 paced retries
    # two waits, each the throttle's floor plus jitter: neither NaN nor unbounded
    assert len(clock.sleeps) == 2 and all(0.25 <= s <= 0.5 for s in clock.sleeps), clock.sleeps


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b"[")
    for _ in range(600):  # bounded: at most a minute
        await asyncio.sleep(0.1)
        await response.write(b"1,")
    return response


async def test_a_trickling_body_ends_at_the_deadline_without_retries(tmp_path: Path) -> None:
    # a short backoff: how often the timed-out GET is retried is the point, not the waits
    fast = RetryPolicy(backoff=ExponentialBackoff(base=0.01, max_backoff=0.05))
    async with serve(_trickle) as server, session(server, tmp_path, retry=fast) as tw:
        with pytest.raises(TransportError, match="Timeout"):
            await tw.list_things(timeout=0.3, deadline=0.3)
        assert len(server.seen) == 1
        # with the default deadline, a timed-out GET is retried, a bounded number of times
        with pytest.raises(TransportError):
            await tw.list_things(timeout=0.2)
        assert 2 <= len(server.seen) <= 1 + 5


async def test_streamed_downloads_take_idle_and_total_limits(tmp_path: Path) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"line 1\n")
        await asyncio.sleep(30)
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(600):
            await response.write(f"line {i}\n".encode())
            await asyncio.sleep(0.05)
        return response

    async with serve(stall) as server, session(server, tmp_path) as tw:
        body = await tw.download_workflow_log(workflow_id="w1", idle_timeout=0.3)
        lines: list[str] = []
        with pytest.raises(TransportError, match="stalled"):
            async for line in body.iter_lines():
                lines.append(line)
        assert lines == ["line 1"] and body.closed
    async with serve(trickle) as server, session(server, tmp_path, stream_total_timeout=0.5) as tw:
        body = await tw.download_workflow_log(workflow_id="w1")
        chunks = 0
        with pytest.raises(TransportError, match=r"total_timeout=0\.5"):
            async for _ in body.iter_chunked(1024):
                chunks += 1
        assert 0 < chunks < 100  # cut off after ~0.5 s of a 30 s body


# -- close() with calls in flight ----------------------------------------------------------------


async def test_close_with_calls_in_flight_gives_them_a_transport_error(tmp_path: Path) -> None:
    arrived = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(10)
        return await ok_json(request)

    async with serve(slow) as server:
        tw = Tower(
            spec=document(), token=TOKEN, endpoint=server.url, rate_limit=None,
            cache_dir=tmp_path, validate_document=False,
        )  # fmt: skip
        await tw.open()
        calls = [asyncio.create_task(tw.list_things()) for _ in range(3)]
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.wait_for(tw.close(), 5)  # does not hang
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        assert all(isinstance(r, TransportError) for r in results), results
        with pytest.raises(TowerError):
            await tw.list_things()
        assert SessionClosed.retryable is False


def test_origins_compare_hosts_as_the_transport_sees_them() -> None:
    from tower_async.transport import origin_of

    assert origin_of("http://xn--bcher-kva.example/x") == origin_of("http://Bücher.example:80")
    assert origin_of("https://h") == ("https", "h", 443)
    assert origin_of("http://[::1]:8080/a") == ("http", "::1", 8080)
    assert origin_of("http://h:8080") != origin_of("http://h:8081")


async def test_a_long_log_line_comes_out_whole(tmp_path: Path) -> None:
    async def long_line(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 400_000 + b"\nend", headers={"Content-Type": "text/plain"})

    async with serve(long_line) as server, session(server, tmp_path) as tw:
        body = await tw.download_workflow_log(workflow_id="w1")
        lines = [line async for line in body.iter_lines()]
        assert [len(line) for line in lines] == [400_000, 3]
