"""The seams of the client, as protocols (as gidgethub's ``abc``): what a session needs from
its transport, and what the fan-out helpers (:mod:`tower_async.orchestration`) need from a
session.  Nothing here imports aiohttp or the session, so the layers above and below depend
on these shapes instead of on each other.

* :class:`SessionLike` - what :mod:`tower_async.orchestration` calls on a session; a
  :class:`~tower_async.Tower` is one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .clock import Clock
    from .operations import OperationMap
    from .paging import Paging
    from .spec import SpecDocument

__all__ = ["OperationLike", "SessionLike"]


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
    def cache(self) -> dict[str, Any]: ...

    def operation(self, name: str) -> OperationLike: ...

    async def call(self, operation_id: str, /, *args: Any, **arguments: Any) -> Any: ...
