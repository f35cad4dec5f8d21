"""The aiohttp transport: send one :class:`~tower_async.sansio.Request`, get a RawResponse.

Deliberately thin.  It knows nothing about operations, retries or validation:
it sends bytes, reads the body (or hands back an unread stream for 2xx responses
of streaming operations) and maps aiohttp's exceptions to
:class:`~tower_async.errors.TransportError`, recording whether the server could
have processed the request (the fact retries of a POST depend on).

Three safety rules live here, whatever the layers above do:

* a request carrying ``Authorization`` is sent only to ``token_origin`` (scheme, host,
  port of the endpoint), else :class:`~tower_async.errors.OriginError` and nothing is sent;
* redirects are never followed (``allow_redirects=False``): a 3xx comes back as it is and
  the session raises :class:`~tower_async.errors.RedirectError`;
* a buffered body is read in chunks, after decompression, and dropped with
  :class:`~tower_async.errors.ResponseTooLarge` once it passes ``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable
from pathlib import PurePath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from ._neterrors import cause_of, transport_error
from ._neterrors import describe as _describe
from ._neterrors import public_url as _public_url
from .errors import (
    ConfigurationError,
    OriginError,
    ResponseTooLarge,
    SessionClosed,
    TransportError,
)
from .sansio import RawResponse, Request

if TYPE_CHECKING:
    from .abc import TimeoutLike, Transport

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "AiohttpTransport",
    "GuardedTransport",
    "StreamingBody",
    "TokenOriginCheck",
    "make_timeout",
    "origin_of",
]

#: the default cap on one buffered (not streamed) response body, after decompression
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

T = TypeVar("T")

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=15, sock_connect=15)
DEFAULT_STREAM_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=15, sock_connect=15, sock_read=120
)


def seconds(value: Any, what: str, *, allow_none: bool = True) -> float | None:
    """``value`` as a positive finite number of seconds (None when allowed), else
    :class:`~tower_async.errors.ConfigurationError` naming ``what``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{what} must be a positive finite number, not {value!r}")
    return float(value)


def make_timeout(value: float | aiohttp.ClientTimeout | None) -> aiohttp.ClientTimeout | None:
    """A float is a total timeout in seconds; None means "the default"."""
    if value is None or isinstance(value, aiohttp.ClientTimeout):
        return value
    total = seconds(value, "timeout", allow_none=False)
    assert total is not None
    return aiohttp.ClientTimeout(total=total, connect=min(15.0, total))


class StreamingBody:
    """An unread response body (run logs, CSV exports, file downloads).

    Read it in chunks (``async for chunk in body.iter_chunked(65536)``), by line
    (``async for line in body.iter_lines()``), or whole (``await body.read()``,
    ``await body.text()``).  Use it as an async context manager, or call
    :meth:`release`, so the connection returns to the pool.

    ``idle_timeout`` (seconds without a byte) and ``total_timeout`` (seconds since the
    headers arrived) cut off a body that trickles or never ends: the connection is
    dropped and the read raises :class:`~tower_async.errors.TransportError`.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        operation_id: str,
        *,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> None:
        self._response = response
        self.operation_id = operation_id
        self.status = response.status
        self.headers = response.headers
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ends = None if total_timeout is None else loop.time() + total_timeout

    def __repr__(self) -> str:
        return f"<StreamingBody of {self.operation_id} ({self.content_type}, status {self.status})>"

    @property
    def content_type(self) -> str:
        return self._response.content_type

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def _guard(self, read: Awaitable[T]) -> T:
        """One read, under the idle and total limits, with aiohttp's errors mapped."""
        limit = self.idle_timeout
        if self._ends is not None:
            left = self._ends - self._loop.time()
            limit = left if limit is None else min(limit, left)
        try:
            if limit is None:
                return await read
            return await asyncio.wait_for(read, max(limit, 0.0))
        except (aiohttp.ClientError, HttpProcessingError, asyncio.TimeoutError) as exc:
            self.close()  # HttpProcessingError: a line longer than aiohttp's limit (LineTooLong)
            if isinstance(exc, asyncio.TimeoutError):
                reason = (
                    f"the streamed body stalled (idle_timeout={self.idle_timeout}, "
                    f"total_timeout={self.total_timeout})"
                )
            else:
                reason = _describe(exc)
            url = _public_url(str(self._response.url))
            method = self._response.method
            raise TransportError(
                self.operation_id, method, url, reason, may_have_been_processed=True
            ) from None

    async def iter_chunked(self, size: int = 65536) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._guard(self._response.content.read(size)):
                yield chunk
        finally:
            self.release()

    async def iter_lines(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        """Lines without their line ending."""
        try:
            while line := await self._guard(self._response.content.readline()):
                yield line.decode(encoding, "replace").rstrip("\r\n")
        finally:
            self.release()

    async def read(self) -> bytes:
        try:
            return await self._guard(self._response.read())
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


class TokenOriginCheck:
    """Refuses a request carrying ``Authorization`` for any origin but ``token_origin``
    (:class:`~tower_async.errors.OriginError`, before anything is sent).  Origins already
    found good are remembered (up to 16), so the common case is one ``str.find``."""

    __slots__ = ("_checked", "token_origin")

    def __init__(self, token_origin: tuple[str, str, int] | None) -> None:
        self.token_origin = token_origin
        self._checked: set[str] = set()

    def check(self, request: Request) -> None:
        if "Authorization" not in request.headers:
            return
        text = request.url
        end = text.find("/", text.find("//") + 2)
        prefix = text if end < 0 else text[:end]  # "scheme://authority", memoised when ok
        if prefix in self._checked:
            return
        here = origin_of(text)
        if self.token_origin is None or here != self.token_origin:
            raise OriginError(
                f"{request.operation_id}: refusing to send the access token to "
                f"{here[0]}://{here[1]}:{here[2]} (not the endpoint's origin); nothing sent"
            )
        if len(self._checked) < 16:
            self._checked.add(prefix)


class AiohttpTransport:
    """Sends requests on one aiohttp ClientSession (the default
    :class:`~tower_async.abc.Transport`).

    ``token_origin`` is ``(scheme, host, port)`` of the endpoint: a request with an
    ``Authorization`` header for any other origin raises OriginError before anything is sent.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        stream_timeout: aiohttp.ClientTimeout = DEFAULT_STREAM_TIMEOUT,
        ssl: Any = True,
        proxy: str | None = None,
        token_origin: tuple[str, str, int] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        owns_session: bool = False,
    ) -> None:
        self.session = session
        # aiohttp re-sends an idempotent request once, silently, when a reused keep-alive
        # connection turns out closed.  That second request would skip the rate limiter (a
        # hidden extra call in the token's window), the retry budget and the on_retry hook;
        # the retry layer already re-sends what is safe, so switch it off.  There is no public
        # way (aiohttp 3.9-3.14): the re-send came in 3.9 (aio-libs/aiohttp#7363) with no
        # switch at all; 3.11 added the private ``_retry_connection`` for aiohttp's own test
        # client (#9396), deliberately without a parameter, and 3.12-3.14 (checked: 3.14.5)
        # still have only that.  On 3.9-3.10 the attribute is absent and the re-send stays.
        _disable_hidden_resend(session)
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.ssl = ssl
        self.proxy = proxy
        self._origin = TokenOriginCheck(token_origin)
        self.max_response_bytes = max_response_bytes
        self.owns_session = owns_session

    @property
    def token_origin(self) -> tuple[str, str, int] | None:
        return self._origin.token_origin

    def _url(self, request: Request) -> URL:
        url = URL(request.url, encoded=True)
        self._origin.check(request)
        return url

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: TimeoutLike | None = None,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> RawResponse:
        """One HTTP exchange.  2xx bodies of streaming calls are left unread."""
        url = self._url(request)
        if timeout is not None and not isinstance(timeout, aiohttp.ClientTimeout):
            timeout = _client_timeout(timeout)
        if self.session.closed:
            raise _closed(request, processed=False)
        data: Any = request.body
        opened: list[IO[bytes]] = []
        if request.multipart is not None:
            data, opened = _form_data(request)
        try:
            response = await self.session.request(
                request.method,
                url,
                headers=request.headers,
                data=data,
                timeout=timeout or (self.stream_timeout if stream else self.timeout),
                ssl=self.ssl,
                proxy=self.proxy,
                allow_redirects=False,
            )
            try:  # read here, not in a helper coroutine: one frame less per resumption
                if stream and 200 <= response.status < 300:
                    return self._streamed(request, response, idle_timeout, total_timeout)
                if self._whole(request, response):
                    content = await response.read()  # exactly Content-Length bytes
                else:
                    content = await self._read(request, response)
            except BaseException:
                response.close()
                raise
            response.release()
            return RawResponse(response.status, response.headers, content)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as exc:
            raise self._failure(request, exc) from (
                cause_of(exc) if not isinstance(exc, RuntimeError) else exc
            )
        finally:
            for fh in opened:
                fh.close()

    def _streamed(
        self,
        request: Request,
        response: aiohttp.ClientResponse,
        idle_timeout: float | None,
        total_timeout: float | None,
    ) -> RawResponse:
        """A 2xx response of a streaming call, its body left unread."""
        body = StreamingBody(
            response,
            request.operation_id,
            idle_timeout=idle_timeout,
            total_timeout=total_timeout,
        )
        return RawResponse(response.status, response.headers, b"", body)

    def _failure(
        self, request: Request, exc: aiohttp.ClientError | asyncio.TimeoutError | RuntimeError
    ) -> TransportError:
        """The library's error for an aiohttp failure (or the session closed under it)."""
        if isinstance(exc, RuntimeError):
            if self.session.closed:  # aiohttp: "Session is closed", before anything was sent
                return _closed(request, processed=False)
            return _failed(request, exc, processed=True)
        if self.session.closed:  # close() while in flight
            never_sent = isinstance(
                exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
            )
            return _closed(request, processed=not never_sent)
        # ConnectError / Timeout / CertificateError / TransportError, with
        # may_have_been_processed=False only when the connection was never made
        return transport_error(exc, request.operation_id, request.method, request.url)

    async def close(self) -> None:
        """Close the aiohttp session if this transport owns it (``owns_session=True``)."""
        if self.owns_session and not self.session.closed:
            await self.session.close()

    def _whole(self, request: Request, response: aiohttp.ClientResponse) -> bool:
        """Whether the body can be read at once: its size is said up front (Content-Length,
        not compressed) and within the cap; ResponseTooLarge, reading nothing, when it is
        said and over the cap.  False: read it in chunks, counting (:meth:`_read`)."""
        length = response.content_length
        if length is None or "Content-Encoding" in response.headers:
            return False
        if length > self.max_response_bytes:
            raise _too_large(request, self.max_response_bytes)
        return True

    async def _read(self, request: Request, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, decompressed, in chunks: ResponseTooLarge past the cap."""
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise _too_large(request, limit)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(request: Request, limit: int) -> ResponseTooLarge:
    """The error for a buffered body over ``limit`` bytes (query secrets masked)."""
    return ResponseTooLarge(request.operation_id, request.method, _public_url(request.url), limit)


class GuardedTransport:
    """A caller's :class:`~tower_async.abc.Transport` (``Tower(transport=...)``) under the
    rules the aiohttp transport keeps itself: the token only to ``token_origin``
    (:class:`~tower_async.errors.OriginError`, nothing sent) and buffered bodies at most
    ``max_response_bytes`` (:class:`~tower_async.errors.ResponseTooLarge`).  Attempts get
    ``timeout`` (``stream_timeout`` for streams) unless the call sets its own."""

    def __init__(
        self,
        inner: Transport,
        *,
        token_origin: tuple[str, str, int] | None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        stream_timeout: aiohttp.ClientTimeout = DEFAULT_STREAM_TIMEOUT,
    ) -> None:
        self.inner = inner
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.max_response_bytes = max_response_bytes
        self._origin = TokenOriginCheck(token_origin)

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: TimeoutLike | None = None,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> RawResponse:
        self._origin.check(request)
        raw = await self.inner.send(
            request,
            stream=stream,
            timeout=timeout or (self.stream_timeout if stream else self.timeout),
            idle_timeout=idle_timeout,
            total_timeout=total_timeout,
        )
        if raw.stream is None and len(raw.body) > self.max_response_bytes:
            raise _too_large(request, self.max_response_bytes)
        return raw

    async def close(self) -> None:
        await self.inner.close()

    def __repr__(self) -> str:
        return f"<GuardedTransport {self.inner!r}>"


def _disable_hidden_resend(session: aiohttp.ClientSession) -> bool:
    """Switch off aiohttp's silent re-send of idempotent requests (see
    :class:`AiohttpTransport`); False when this aiohttp has no switch (3.9, 3.10)."""
    if not hasattr(session, "_retry_connection"):
        return False
    session._retry_connection = False
    return True


def _client_timeout(timeout: TimeoutLike) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeout.total,
        connect=timeout.connect,
        sock_read=timeout.sock_read,
        sock_connect=timeout.sock_connect,
    )


def origin_of(url: str | URL) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL, the scheme's default port filled in."""
    if isinstance(url, str):
        url = URL(url)
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme.lower(), (url.host or "").lower(), port


def _failed(request: Request, exc: BaseException, *, processed: bool) -> TransportError:
    return TransportError(
        request.operation_id,
        request.method,
        _public_url(request.url),
        _describe(exc),
        may_have_been_processed=processed,
    )


def _closed(request: Request, *, processed: bool) -> SessionClosed:
    return SessionClosed(
        request.operation_id,
        request.method,
        _public_url(request.url),
        "the session was closed",
        may_have_been_processed=processed,
    )
