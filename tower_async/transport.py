"""The aiohttp transport: send one :class:`~tower_async.sansio.Request`, get a RawResponse.

Deliberately thin.  It knows nothing about operations, retries or validation:
it sends bytes, reads the body (or hands back an unread stream for 2xx responses
of streaming operations) and maps aiohttp's exceptions to
:class:`~tower_async.errors.TransportError`, recording whether the server could
have processed the request (the fact retries of a POST depend on).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import PurePath
from types import TracebackType
from typing import IO, Any

import aiohttp
from yarl import URL

from ._neterrors import cause_of, transport_error
from ._neterrors import describe as _describe  # noqa: F401 - kept for callers
from ._neterrors import public_url as _public_url  # noqa: F401 - kept for callers
from .sansio import RawResponse, Request

__all__ = ["DEFAULT_TIMEOUT", "AiohttpTransport", "StreamingBody", "make_timeout"]

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=15, sock_connect=15)
DEFAULT_STREAM_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=15, sock_connect=15, sock_read=120
)


def make_timeout(value: float | aiohttp.ClientTimeout | None) -> aiohttp.ClientTimeout | None:
    """A float is a total timeout in seconds; None means "the default"."""
    if value is None or isinstance(value, aiohttp.ClientTimeout):
        return value
    return aiohttp.ClientTimeout(total=float(value), connect=min(15.0, float(value)))


class StreamingBody:
    """An unread response body (run logs, CSV exports, file downloads).

    Read it in chunks (``async for chunk in body.iter_chunked(65536)``), by line
    (``async for line in body.iter_lines()``), or whole (``await body.read()``,
    ``await body.text()``).  Use it as an async context manager, or call
    :meth:`release`, so the connection returns to the pool.
    """

    def __init__(self, response: aiohttp.ClientResponse, operation_id: str) -> None:
        self._response = response
        self.operation_id = operation_id
        self.status = response.status
        self.headers = response.headers

    def __repr__(self) -> str:
        return f"<StreamingBody of {self.operation_id} ({self.content_type}, status {self.status})>"

    @property
    def content_type(self) -> str:
        return self._response.content_type

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def iter_chunked(self, size: int = 65536) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        finally:
            self.release()

    async def iter_lines(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        """Lines without their line ending."""
        try:
            async for line in self._response.content:
                yield line.decode(encoding, "replace").rstrip("\r\n")
        finally:
            self.release()

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        finally:
            self.release()

    async def text(self, encoding: str = "utf-8") -> str:
        return (await self.read()).decode(encoding, "replace")

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        """Drop the connection (when the rest of the body is not wanted)."""
        self._response.close()

    @property
    def closed(self) -> bool:
        return self._response.closed

    async def __aenter__(self) -> StreamingBody:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._response.content.at_eof():
            self.release()
        else:
            self.close()


def _form_data(request: Request) -> tuple[aiohttp.FormData, list[IO[bytes]]]:
    form = aiohttp.FormData()
    opened: list[IO[bytes]] = []
    for part in request.multipart or ():
        value: Any = part.value
        if isinstance(value, PurePath):
            value = open(value, "rb")  # noqa: SIM115 - closed after the request
            opened.append(value)
        form.add_field(
            part.name,
            value,
            filename=part.filename,
            content_type=part.content_type,
        )
    return form, opened


class AiohttpTransport:
    """Sends requests on one aiohttp ClientSession."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        stream_timeout: aiohttp.ClientTimeout = DEFAULT_STREAM_TIMEOUT,
        ssl: Any = True,
        proxy: str | None = None,
    ) -> None:
        self.session = session
        # aiohttp re-sends an idempotent request once, silently, when a reused keep-alive
        # connection turns out closed.  That second request would skip the rate limiter (a
        # hidden extra call in the token's window), the retry budget and the on_retry hook;
        # the retry layer already re-sends what is safe, so switch it off (aiohttp's own test
        # client does the same).
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.ssl = ssl
        self.proxy = proxy

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> RawResponse:
        """One HTTP exchange.  2xx bodies of streaming calls are left unread."""
        data: Any = request.body
        opened: list[IO[bytes]] = []
        if request.multipart is not None:
            data, opened = _form_data(request)
        try:
            response = await self.session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=data,
                timeout=timeout or (self.stream_timeout if stream else self.timeout),
                ssl=self.ssl,
                proxy=self.proxy,
            )
            try:
                if stream and 200 <= response.status < 300:
                    return RawResponse(
                        response.status,
                        response.headers,
                        b"",
                        StreamingBody(response, request.operation_id),
                    )
                body = await response.read()
            except BaseException:
                response.close()
                raise
            response.release()
            return RawResponse(response.status, response.headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # ConnectError / Timeout / CertificateError / TransportError, with
            # may_have_been_processed=False only when the connection was never made
            raise transport_error(
                exc, request.operation_id, request.method, request.url
            ) from cause_of(exc)
        finally:
            for fh in opened:
                fh.close()
