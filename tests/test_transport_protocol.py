"""``Tower(transport=...)``: any object with ``send``/``close`` (``tower_async.abc.Transport``)
sends the requests; the session's rules (validation, the token's origin, the body cap) apply
around it.  An in-memory transport here: no HTTP at all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pytest

from tower_async import (
    ConfigurationError,
    NotFound,
    OriginError,
    RequestValidationError,
    ResponseTooLarge,
    TowerError,
)
from tower_async.abc import StreamBody, TimeoutLike, Transport
from tower_async.sansio import RawResponse, Request
from tower_async.session import Tower
from tower_async.transport import AiohttpTransport

ENDPOINT = "https://platform.example.test/api"
BEARER: dict[str, list[str]] = {"bearerAuth": []}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.1",
    "info": {"title": "in-memory", "version": "1.0.0"},
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Launch": {
                "type": "object",
                "required": ["launch"],
                "properties": {
                    "launch": {
                        "type": "object",
                        "properties": {"pipeline": {"type": "string"}},
                    }
                },
            }
        },
    },
    "security": [BEARER],
    "paths": {
        "/service-info": {
            "get": {
                "operationId": "Info",
                "security": [{}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {}}}},
            }
        },
        "/workflow/{workflowId}": {
            "get": {
                "operationId": "DescribeWorkflow",
                "parameters": [
                    {
                        "name": "workflowId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {}}},
                    "404": {"description": "missing"},
                },
            }
        },
        "/workflow/{workflowId}/log": {
            "get": {
                "operationId": "DownloadLog",
                "parameters": [
                    {
                        "name": "workflowId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"200": {"description": "ok", "content": {"text/plain": {}}}},
            }
        },
        "/workflow/launch": {
            "post": {
                "operationId": "CreateWorkflowLaunch",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Launch"}}
                    },
                },
                "responses": {"200": {"description": "ok", "content": {"application/json": {}}}},
            }
        },
    },
}


class MemoryStream:
    """A StreamBody over bytes already in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False

    @property
    def content_type(self) -> str:
        return "text/plain"

    async def iter_chunked(self, size: int = 65536) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), size):
            yield self.data[i : i + size]
        self.release()

    async def iter_lines(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        for line in self.data.decode(encoding).splitlines():
            yield line
        self.release()

    async def read(self) -> bytes:
        self.release()
        return self.data

    async def text(self, encoding: str = "utf-8") -> str:
        return (await self.read()).decode(encoding)

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.released = True

    async def __aenter__(self) -> MemoryStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class MemoryTransport:
    """Answers from a dict of runs; records every request it was given."""

    def __init__(self, *, huge: bool = False) -> None:
        self.requests: list[Request] = []
        self.timeouts: list[TimeoutLike | None] = []
        self.runs = {"r1": {"workflow": {"id": "r1", "status": "RUNNING"}}}
        self.closed = False
        self.huge = huge

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: TimeoutLike | None = None,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> RawResponse:
        self.requests.append(request)
        self.timeouts.append(timeout)
        path = request.url.split("?", 1)[0].removeprefix(ENDPOINT)
        json = {"Content-Type": "application/json"}
        if self.huge:
            return RawResponse(200, json, b"[" + b"0," * 1000 + b"0]")
        if path == "/service-info":
            return RawResponse(200, json, orjson.dumps({"serviceInfo": {"version": "mem"}}))
        if path == "/workflow/launch" and request.method == "POST":
            launch = orjson.loads(request.body or b"{}")["launch"]
            self.runs["r2"] = {"workflow": {"id": "r2", "pipeline": launch["pipeline"]}}
            return RawResponse(200, json, b'{"workflowId": "r2"}')
        if path.endswith("/log") and stream:
            return RawResponse(200, {"Content-Type": "text/plain"}, b"", MemoryStream(b"a\nb\n"))
        run = self.runs.get(path.rsplit("/", 1)[-1])
        if run is None:
            return RawResponse(404, json, b'{"message": "no such run"}')
        return RawResponse(200, json, orjson.dumps(run))

    async def close(self) -> None:
        self.closed = True


def _tower(transport: Any, **options: Any) -> Tower:
    return Tower(
        DOCUMENT, token="sekret", endpoint=ENDPOINT, transport=transport, rate_limit=None, **options
    )


def test_the_protocols_fit_their_implementations() -> None:
    assert isinstance(MemoryTransport(), Transport)
    assert isinstance(MemoryStream(b""), StreamBody)
    # the defaults satisfy them too (checked statically by mypy in tower_async itself)
    assert all(hasattr(AiohttpTransport, m) for m in ("send", "close"))


def test_the_sans_io_core_does_not_import_aiohttp() -> None:
    code = (
        "import sys, tower_async.sansio, tower_async.abc, tower_async.clock; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'yarl')))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


async def test_calls_go_through_a_custom_transport() -> None:
    memory = MemoryTransport()
    async with _tower(memory) as tw:
        assert tw.transport is memory
        assert (await tw.info())["serviceInfo"]["version"] == "mem"
        run = await tw.describe_workflow(workflow_id="r1")
        assert run["workflow"]["status"] == "RUNNING"
        launched = await tw.create_workflow_launch(body={"launch": {"pipeline": "hello"}})
        assert launched == {"workflowId": "r2"}
        with pytest.raises(NotFound) as missing:
            await tw.describe_workflow(workflow_id="nope")
        assert "no such run" in str(missing.value)
        async with await tw.download_log(workflow_id="r1") as log:
            assert [line async for line in log.iter_lines()] == ["a", "b"]
        with pytest.raises(TowerError, match="no aiohttp session"):
            tw.http  # noqa: B018
    assert memory.closed  # the session closed its transport
    sent = memory.requests
    assert [r.operation_id for r in sent] == [
        "Info",
        "DescribeWorkflow",
        "CreateWorkflowLaunch",
        "DescribeWorkflow",
        "DownloadLog",
    ]
    assert "Authorization" not in sent[0].headers  # an anonymous operation
    assert sent[1].headers["Authorization"] == "Bearer sekret"
    # every attempt got a time limit: the session's defaults (a stream: per read)
    assert all(t is not None and (t.total or t.sock_read) for t in memory.timeouts)


async def test_validation_runs_before_the_transport_sees_anything() -> None:
    memory = MemoryTransport()
    async with _tower(memory) as tw:
        with pytest.raises(RequestValidationError) as caught:
            await tw.create_workflow_launch(body={"launch": {"pipeline": 42}})
        assert "CreateWorkflowLaunch" in str(caught.value)
        with pytest.raises(RequestValidationError):
            await tw.describe_workflow()  # the required path parameter
    assert memory.requests == []


async def test_the_token_goes_only_to_the_endpoints_origin() -> None:
    memory = MemoryTransport()
    async with _tower(memory) as tw:
        elsewhere = Request(
            "DescribeWorkflow",
            "GET",
            "https://evil.example.test/workflow/r1",
            {"Authorization": "Bearer sekret"},
        )
        assert tw._transport is not None
        with pytest.raises(OriginError) as caught:
            await tw._transport.send(elsewhere)
        assert "sekret" not in str(caught.value)
    assert memory.requests == []  # refused before the transport was called


async def test_buffered_bodies_are_capped_around_a_custom_transport() -> None:
    memory = MemoryTransport(huge=True)
    async with _tower(memory, max_response_bytes=100) as tw:
        with pytest.raises(ResponseTooLarge):
            await tw.describe_workflow(workflow_id="r1")


async def test_the_document_is_downloaded_through_the_transport() -> None:
    class Serving(MemoryTransport):
        async def send(self, request: Request, **options: Any) -> RawResponse:
            if request.url.endswith("/openapi.json"):
                self.requests.append(request)
                return RawResponse(
                    200, {"Content-Type": "application/json"}, orjson.dumps(DOCUMENT)
                )
            return await super().send(request, **options)

    memory = Serving()
    url = "https://platform.example.test/openapi.json"
    async with Tower(
        url,
        token="t",
        endpoint=ENDPOINT,
        transport=memory,
        rate_limit=None,
        validate_document=False,
    ) as tw:
        assert "DescribeWorkflow" in tw.operations
    assert memory.requests[0].operation_id == "opening the session"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"http_session": object()}, "http_session"),
        ({"session": object()}, "http_session"),  # its deprecated name
        ({"proxy": "http://proxy:3128"}, "proxy"),
        ({"verify": False}, "verify"),
        ({"verify": "x.pem"}, "verify"),
        ({"ca_file": "x.pem"}, "verify"),
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_aiohttp_options_conflict_with_a_transport(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{named}="):
        _tower(MemoryTransport(), **options)


def test_a_transport_must_have_send_and_close() -> None:
    with pytest.raises(ConfigurationError, match="send"):
        _tower(object())


async def test_aiohttps_hidden_resend_is_switched_off() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        version = tuple(int(p) for p in aiohttp.__version__.split(".")[:2])
        AiohttpTransport(http)
        # no public switch in 3.9-3.14; the private one exists from 3.11 (see AiohttpTransport)
        if version >= (3, 11):
            assert http._retry_connection is False
        else:
            assert not hasattr(http, "_retry_connection")
