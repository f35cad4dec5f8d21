"""Errors users can catch precisely (issue 18), raised by the fake Platform over loopback.

Every 4xx is a ClientError (401 an Unauthorized, which is a Forbidden); connection
failures are ConnectError naming the endpoint, timeouts Timeout, both with aiohttp's
exception as ``__cause__``; a missing token is caught at open; positional arguments
say arguments are keyword-only.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from tower_async import (
    ApiError,
    ArgumentError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectError,
    Forbidden,
    MissingToken,
    NotFound,
    RateLimited,
    RequestValidationError,
    ServerError,
    Timeout,
    Tower,
    TowerError,
    TransportError,
    Unauthorized,
)
from tower_async.retries import RetryPolicy
from tower_async.testing import FakePlatform

from .tiny_server import TINY_SPEC, TOKEN

NO_RETRY = RetryPolicy(max_attempts=1)


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tw(tw: Tower) -> Tower:
    """conftest's session on the fake, without retries: every fault reaches the caller."""
    tw._retry = NO_RETRY
    return tw


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (405, ClientError),
        (409, Conflict),
        (410, ClientError),
        (422, ClientError),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
    ],
)
async def test_each_status_raises_its_class(
    tw: Tower, fake: FakePlatform, status: int, cls: type[ApiError]
) -> None:
    fake.faults.burst("ListWorkflows", status=status, count=1)
    with pytest.raises(cls) as info:
        await tw.list_workflows(max=1)
    err = info.value
    assert type(err) is cls
    assert (err.status, err.operation_id, err.method) == (status, "ListWorkflows", "GET")
    assert isinstance(err, ApiError) and isinstance(err, TowerError)
    assert isinstance(err, ClientError) == (400 <= status < 500)
    assert isinstance(err, ServerError) == (status >= 500)
    assert fake.token not in str(err) and fake.token not in repr(err)


async def test_unauthorized_is_caught_as_forbidden(tw: Tower, fake: FakePlatform) -> None:
    fake.faults.burst("ListWorkflows", status=401, count=1)
    with pytest.raises(Forbidden) as info:  # the Platform often says 403 for a bad token
        await tw.list_workflows(max=1)
    assert isinstance(info.value, Unauthorized)


async def test_the_fakes_own_refusals(tw: Tower, fake: FakePlatform, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="DescribeWorkflow"):
        await tw.describe_workflow(workflow_id="nope0000000000")
    body = fake.launch_body(tw.workspace_id or 0, "x")
    del body["launch"]["computeEnvId"]
    with pytest.raises(BadRequest):
        await tw.create_workflow_launch(body=body, validation="off")
    bad = Tower(token="not-a-token", endpoint=fake.url, cache_dir=tmp_path, retry=NO_RETRY)
    async with bad:
        with pytest.raises(Forbidden) as info:
            await bad.list_workflows(workspace_id=tw.workspace_id)
    assert info.value.hint is None  # a token was sent: no hint about a missing one


async def test_missing_token_is_caught_at_open(tmp_path: Path) -> None:
    # an endpoint nobody listens on: the error comes before any connection is tried
    endpoint = f"http://127.0.0.1:{closed_port()}"
    session = Tower(endpoint=endpoint, cache_dir=tmp_path)
    with pytest.raises(MissingToken, match="TOWER_ACCESS_TOKEN") as info:
        async with session:
            pass
    assert endpoint in str(info.value)
    assert session.has_token is False


async def test_token_from_the_environment_and_explicit_anonymous(
    fake: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOWER_ACCESS_TOKEN", fake.token)
    async with Tower(endpoint=fake.url, cache_dir=tmp_path) as tw:
        assert tw.has_token
    monkeypatch.delenv("TOWER_ACCESS_TOKEN")
    ws = fake.workspace_id("my-org", "production")
    async with Tower(token="", endpoint=fake.url, cache_dir=tmp_path) as anonymous:
        assert (await anonymous.info())["serviceInfo"]
        with pytest.raises(Forbidden, match="no access token") as info:
            await anonymous.list_workflows(workspace_id=ws)
    assert "TOWER_ACCESS_TOKEN" in str(info.value)


async def test_unreachable_endpoint_at_open_is_a_connect_error(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(ConnectError) as info:
        async with Tower(token=TOKEN, endpoint=f"http://127.0.0.1:{port}", cache_dir=tmp_path):
            pass
    err = info.value
    assert f"127.0.0.1:{port}" in str(err) and err.host == f"127.0.0.1:{port}"
    assert isinstance(err.__cause__, aiohttp.ClientConnectorError)
    assert err.may_have_been_processed is False
    assert TOKEN not in str(err) and TOKEN not in repr(err) and TOKEN not in repr(err.__cause__)


async def test_unreachable_endpoint_on_a_call_is_a_connect_error(tmp_path: Path) -> None:
    port = closed_port()
    endpoint = f"http://127.0.0.1:{port}"
    async with Tower(
        spec=TINY_SPEC, token=TOKEN, endpoint=endpoint, cache_dir=tmp_path, retry=NO_RETRY
    ) as tw:
        with pytest.raises(ConnectError, match=f"endpoint 127.0.0.1:{port}") as info:
            await tw.list_items()
    err = info.value
    assert isinstance(err, TransportError) and err.operation_id == "listItems"
    assert isinstance(err.__cause__, aiohttp.ClientConnectorError)
    assert not err.may_have_been_processed


async def test_timeout_and_disconnect_keep_their_cause(tw: Tower, fake: FakePlatform) -> None:
    fake.faults.add("ListWorkflows", "latency", delay=1.0, count=1)
    with pytest.raises(Timeout) as timed_out:
        await tw.list_workflows(max=1, timeout=0.2)
    assert isinstance(timed_out.value, TimeoutError)  # also a builtin TimeoutError
    assert isinstance(timed_out.value.__cause__, asyncio.TimeoutError)
    assert timed_out.value.may_have_been_processed  # it was sent: the server had it

    fake.faults.add("ListWorkflows", "drop_before", count=1)
    with pytest.raises(TransportError) as dropped:
        await tw.list_workflows(max=1)
    assert type(dropped.value) is TransportError
    assert isinstance(dropped.value.__cause__, aiohttp.ClientError)
    assert fake.token not in str(dropped.value)


async def test_positional_arguments_say_keyword_only(tw: Tower, fake: FakePlatform) -> None:
    sent: list[object] = []
    tw._observe.on_request = sent.append  # nothing may go out
    tw._observe.always = True
    for call in (
        lambda: tw.list_workflows(5),
        lambda: tw.list_workflows.raw(5, max=2),
        lambda: tw.call("ListWorkflows", 5),
    ):
        with pytest.raises(ArgumentError, match=r"list_workflows\(\) takes keyword arguments"):
            await call()
    with pytest.raises(TypeError, match="ListWorkflows"):  # a TypeError too
        tw.list_workflows.items(5)
    with pytest.raises(RequestValidationError, match="keyword"):
        tw.list_workflows.pages(5)
    assert sent == []


def test_response_errors_are_not_chained_since_they_hold_the_request_headers() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    from tower_async._neterrors import cause_of, transport_error

    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {TOKEN}"}))
    url = URL("https://example.org/workflow")
    info = aiohttp.RequestInfo(url, "GET", headers, url)
    exc = aiohttp.TooManyRedirects(info, (), status=302, message="Found")
    assert TOKEN in repr(exc)  # why: aiohttp's repr shows the request headers
    err = transport_error(exc, "ListWorkflows", "GET", str(url) + "?max=1")
    assert type(err) is TransportError and cause_of(exc) is None
    assert TOKEN not in str(err) and TOKEN not in repr(err)
    assert err.url == str(url)  # without the query
    dropped = aiohttp.ServerDisconnectedError()
    assert cause_of(dropped) is dropped
