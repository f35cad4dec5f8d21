"""The session's own aiohttp session keeps no cookies: the Platform authenticates by the
bearer token, and what a response sets (a load balancer's, a hostile server's) is never
sent back, as with the tw CLI."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tower_async import Tower

from .loopback import TOKEN, document, serve


async def test_a_cookie_a_response_sets_is_never_sent_back(tmp_path: Path) -> None:
    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(body=b"{}", content_type="application/json")
        response.set_cookie("AWSALB", "sticky-1", path="/")
        response.set_cookie("session", "s3cr3t", path="/", httponly=True)
        return response

    async with serve(set_cookie) as server:
        # a host name: aiohttp's default jar ignores cookies of IP addresses
        endpoint = f"http://localhost:{server.port}"
        async with Tower(
            spec=document(), token=TOKEN, endpoint=endpoint, rate_limit=None,
            cache_dir=tmp_path, validate_document=False,
        ) as tw:  # fmt: skip
            for _ in range(3):
                assert await tw.call("ListThings") == {}
    calls = [seen for seen in server.seen if seen.path == "/things"]
    assert len(calls) == 3
    # every call carried the token, and none carried a cookie
    assert all(seen.headers.get("Authorization") == f"Bearer {TOKEN}" for seen in calls)
    assert [seen.headers.get("Cookie") for seen in calls] == [None, None, None]
