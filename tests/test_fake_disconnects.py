"""A client that goes away mid-request is not an error of the fake: no ERROR log, no 500.

aiohttp (>= 3.9, ``handler_cancellation=False``) does not cancel the handler when its client
disconnects: the next read of the request body or write of the answer raises
``ConnectionResetError``. The fake takes that quietly (DEBUG, ``fake.disconnects``) only
while the connection is really gone; the same error with the client still there is a bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tower_async.testing import FakePlatform
from tower_async.testing import app as fake_app


async def _until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    for _ in range(int(limit / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_cancelled_launch_logs_no_error(
    fake_platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = fake_platform
    ws = fake.workspace_id("my-org", "production")
    # the fake holds the request before reading its body: the client gives up meanwhile
    slow = fake.faults.add("CreateWorkflowLaunch", "latency", delay=0.3, count=1)
    url = f"{fake.url}/workflow/launch?workspaceId={ws}"
    async with aiohttp.ClientSession(headers=fake.headers()) as s:

        async def launch() -> None:
            async with s.post(url, json=fake.launch_body(ws, "gone")) as resp:
                await resp.read()

        task = asyncio.create_task(launch())
        await _until(lambda: slow.fired == 1)  # the request is in the fake
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _until(lambda: fake.disconnects == ["CreateWorkflowLaunch"])
        async with s.get(f"{fake.url}/user-info") as resp:  # the server is fine
            assert resp.status == 200
    assert fake.state.launches_named("gone") == []
    assert _errors(caplog) == []
    assert not fake.errors
    assert any(
        r.name == "tower_async.testing" and "client went away" in r.getMessage()
        for r in caplog.records
    )


async def test_a_client_leaving_mid_body_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakePlatform(rate_limit=None) as fake:
        # the answer trickles out; the client reads a little and hangs up
        fake.faults.add("UserInfo", "slow_body", delay=0.05, chunk=16, count=1)
        async with aiohttp.ClientSession(headers=fake.headers()) as s:
            resp = await s.get(f"{fake.url}/user-info")
            assert resp.status == 200
            await resp.content.readexactly(16)
            resp.close()  # drops the connection
        await _until(lambda: fake.disconnects == ["UserInfo"])
        assert not fake.errors
    assert _errors(caplog) == []


async def test_a_connection_error_with_the_client_still_there_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(app: Any, ctx: Any) -> Any:
        raise ConnectionResetError("a bug of the fake, not a client going away")

    monkeypatch.setattr(fake_app, "h_user_info", broken)
    async with FakePlatform(rate_limit=None) as fake:
        async with (
            aiohttp.ClientSession(headers=fake.headers()) as s,
            s.get(f"{fake.url}/user-info") as resp,
        ):
            assert resp.status == 500
            assert "ConnectionResetError" in (await resp.json())["message"]
        assert [type(e) for e in fake.errors] == [ConnectionResetError]
        assert fake.disconnects == []
    assert any(r.name == "tower_async.testing" for r in _errors(caplog))
