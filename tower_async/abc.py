"""The seams of the client, as protocols (as gidgethub's ``abc``): what a session needs from
its transport, and what the fan-out helpers (:mod:`tower_async.orchestration`) need from a
session.  Nothing here imports aiohttp or the session, so the layers above and below depend
on these shapes instead of on each other.

* :class:`Transport` - sends a :class:`~tower_async.sansio.Request`, gives back a
  :class:`~tower_async.sansio.RawResponse` (whose ``stream`` is a :class:`StreamBody`);
* :class:`SessionLike` - what :mod:`tower_async.orchestration` calls on a session; a
  :class:`~tower_async.Tower` is one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .sansio import RawResponse, Request, StreamBody

if TYPE_CHECKING:
    from .clock import Clock
    from .operations import OperationMap
    from .paging import Paging
    from .spec import SpecDocument

__all__ = [
    "OperationLike",
    "SessionLike",
    "StreamBody",
    "TimeoutLike",
    "Transport",
]


class OperationLike(Protocol):
    """One operation bound to a session (:class:`~tower_async.BoundOperation`)."""

    @property
    def paging(self) -> Paging | None: ...

    def items(self, **arguments: Any) -> AsyncIterator[Any]: ...

    def __call__(self, **arguments: Any) -> Awaitable[Any]: ...


class SessionLike(Protocol):
    """What the fan-out helpers use of a session (:class:`~tower_async.Tower` is one)."""

    @property
    def spec(self) -> SpecDocument: ...

    @property
    def operations(self) -> OperationMap: ...

    @property
    def workspace_id(self) -> int | None: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def memo(self) -> dict[str, Any]: ...

    def operation(self, name: str) -> OperationLike: ...

    async def call(self, operation_id: str, /, *args: Any, **arguments: Any) -> Any: ...


@runtime_checkable
class TimeoutLike(Protocol):
    """One attempt's time limits in seconds, None for none (``aiohttp.ClientTimeout`` is one)."""

    @property
    def total(self) -> float | None: ...

    @property
    def connect(self) -> float | None: ...

    @property
    def sock_read(self) -> float | None: ...

    @property
    def sock_connect(self) -> float | None: ...


@runtime_checkable
class Transport(Protocol):
    """Sends one :class:`~tower_async.sansio.Request` and gives back its
    :class:`~tower_async.sansio.RawResponse` (``Tower(transport=...)``; the default is
    :class:`~tower_async.transport.AiohttpTransport`).

    ``send`` returns the status, headers and the whole body, or for ``stream=True`` a 2xx
    with ``body=b""`` and an unread :class:`~tower_async.sansio.StreamBody` as ``stream``;
    it never follows redirects, and raises :class:`~tower_async.errors.TransportError`
    (``may_have_been_processed`` saying whether the server could have acted) for anything
    that is not a response, which is what the retry layer re-sends.  ``timeout`` bounds the
    attempt (the session's default, or the call's); ``idle_timeout``/``total_timeout`` bound
    a streamed body's reads.  The session still refuses to send the token to any origin
    but the endpoint's and caps buffered bodies (``max_response_bytes``) around it.
    ``close()`` is awaited when the session closes.
    """

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: TimeoutLike | None = None,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> RawResponse: ...

    async def close(self) -> None: ...
