"""Small shared pieces: memoised resolutions, offset paging, name errors."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Iterable,
    Mapping,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ResponseValidationError, TowerError

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = [
    "AmbiguousName",
    "NameNotFound",
    "ResolutionError",
    "as_id",
    "as_object",
    "iter_offset_items",
    "listed_runs",
    "memo",
    "objects",
]

T = TypeVar("T")

#: safety bound on pages walked by one listing (100k pages of 100 = 10M items)
MAX_PAGES = 100_000
_MEMO_KEY = "tower_async.orchestration"


class ResolutionError(TowerError, LookupError):
    """A name (workspace, pipeline, compute environment, label) could not be resolved."""

    def __init__(self, kind: str, name: str, message: str, candidates: Iterable[str] = ()) -> None:
        self.kind = kind
        self.name = name
        self.candidates = tuple(candidates)
        super().__init__(message)


class NameNotFound(ResolutionError):
    """No exact match; ``candidates`` holds the closest names, if any."""


class AmbiguousName(ResolutionError):
    """More than one exact match; ``candidates`` holds their ids."""


def not_found(kind: str, name: str, where: str, names: Iterable[str]) -> NameNotFound:
    pool = sorted(set(names))
    close = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [n for n in pool if lowered in n.lower() or n.lower() in lowered][:5]
    hint = f"; close names: {', '.join(close)}" if close else ""
    if not close and pool and len(pool) <= 10:
        hint = f"; known: {', '.join(pool)}"
    return NameNotFound(kind, name, f"no {kind} named {name!r} {where}{hint}", close)


def _unexpected(operation_id: str, where: str, message: str, data: Any) -> ResponseValidationError:
    return ResponseValidationError(operation_id, 200, [(where, message)], data)


def as_object(data: Any, operation_id: str, where: str = "$") -> Mapping[str, Any]:
    """``data`` when it is a JSON object, else ResponseValidationError naming the place."""
    if isinstance(data, Mapping):
        return data
    raise _unexpected(operation_id, where, f"expected an object, got {type(data).__name__}", data)


def objects(data: Any, key: str) -> list[Mapping[str, Any]]:
    """The objects in ``data[key]`` (a missing or non-array value gives none)."""
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def as_id(value: Any, operation_id: str, where: str) -> int:
    """An integer id from a response (an int, or a string of ASCII digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    raise _unexpected(operation_id, where, f"expected an integer id, got {value!r:.80}", value)


def _memo_table(tw: SessionLike) -> dict[Hashable, asyncio.Future[Any]]:
    table = tw.memo.get(_MEMO_KEY)
    if table is None:
        table = {}
        tw.memo[_MEMO_KEY] = table
    return table


async def memo(tw: SessionLike, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
    """Resolve ``key`` once per session, even when many tasks ask at the same time.

    Concurrent callers share one in-flight lookup; a failed lookup is forgotten so a
    later call tries again.
    """
    table = _memo_table(tw)
    fut = table.get(key)
    if fut is None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        table[key] = fut
        try:
            value = await factory()
        except BaseException as exc:
            table.pop(key, None)
            if isinstance(exc, Exception):
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
            else:
                fut.cancel()
            raise
        fut.set_result(value)
        return value
    # another task is resolving (or resolved) it
    return await asyncio.shield(fut)


async def iter_offset_items(
    tw: SessionLike,
    operation_id: str,
    key: str,
    *,
    page_size: int = 100,
    **arguments: Any,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every item of a paged listing: ``tw.<op>.items()`` (``tower_async.pagination``).

    ``key`` names the array property (used only by the fallback for operations whose
    paging the document does not reveal: plain ``max``/``offset`` stepping).
    """
    bound = tw.operation(operation_id)
    if bound.paging is not None:
        async for item in bound.items(page_size=page_size, **arguments):
            if isinstance(item, Mapping):  # anything else in a listing is not a match
                yield dict(item)
        return
    offset = 0
    for _ in range(MAX_PAGES):
        page = as_object(await bound(max=page_size, offset=offset, **arguments), operation_id)
        items = objects(page, key)
        for item in items:
            yield dict(item)
        offset += len(items)
        if not items or page.get("hasMore") is False:
            return
        total = page.get("totalSize")
        if isinstance(total, int) and total > 0 and offset >= total:
            return


async def listed_runs(
    tw: SessionLike, ws: int | None, wanted: Collection[str], budget: int
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """``(id, run)`` for each ``wanted`` run on the workspace's run listing, as found.

    The listing (``ListWorkflows``, newest first, ``attributes=minimal``, pages of 100
    through :func:`iter_offset_items`) is read until every wanted run was seen or
    ``budget`` items went by; a run it did not show is not yielded.
    """
    pending = set(wanted)
    listing = iter_offset_items(
        tw, "ListWorkflows", "workflows", workspace_id=ws, attributes=["minimal"]
    )
    async with aclosing(listing):
        seen = 0
        async for item in listing:
            wf = item.get("workflow")
            wid = wf.get("id") if isinstance(wf, Mapping) else None
            if isinstance(wf, Mapping) and isinstance(wid, str) and wid in pending:
                pending.discard(wid)
                yield wid, dict(wf)
            seen += 1
            if not pending or seen >= budget:
                return
