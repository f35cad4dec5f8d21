"""Paged listings as async iterators: ``tw.list_workflows.items()`` and ``.pages()``.

The Platform's OpenAPI document does not describe paging, so it is inferred per operation
from its query parameters and its success-response schema (:mod:`tower_async.paging`, pure;
the session's binding caches the verdicts per document):

``offset`` style
    query parameters ``max`` and ``offset``; the response is an object with exactly one
    array property (the items) and optionally ``totalSize`` or ``total`` (an integer) and
    ``hasMore`` (a boolean).  ``ListWorkflows``, ``ListPipelines``, ``ListWorkflowTasks`` ...
``token`` style
    a request token (``nextPageToken``, ``pageToken`` or ``page_token``), an optional page
    size (``pageSize``, ``page_size`` or ``max``) and the next token in the response
    (``nextPageToken`` or ``next_page_token``).  ``ExploreDataLink``,
    ``ExploreDataLinkWithPath``, ``ListAuditLogsV2`` and also GA4GH WES ``Ga4ghRunList``
    (``page_size``/``page_token`` -> ``next_page_token``; WES ends with an empty token).

Usage::

    async for run in tw.list_workflows.items(workspace_id=ws, search="status:FAILED"):
        ...
    async with tw.list_workflows.pages(page_size=50, max_items=500, prefetch=True) as pages:
        async for page in pages:            # each page: the response object as returned
            ...
        pages.total, pages.last_page, pages.pages_fetched

Both take the operation's own arguments plus ``page_size`` (sent as ``max``/``pageSize``;
default :data:`DEFAULT_PAGE_SIZE`; a caller's own ``max=``/``pageSize=`` counts as the page
size), ``max_items`` (stop after that many items; the last request asks for no more than
needed) and ``prefetch`` (fetch the next page while the caller works on the current one; at
most one page ahead).  A caller's ``offset=`` or page token is the starting point.
Every page is an ordinary call of the bound operation, so it takes the session's rate-limit
bucket, retries and validation.  A plain ``await tw.list_workflows(...)`` still returns one page.

When iteration stops (whichever the operation offers, in this order):

* an empty page;
* ``hasMore: false`` (``hasMore`` wins over ``totalSize`` when both are present);
* the offset reached ``totalSize``/``total``; a *short* page does not stop iteration when the
  total says more remain, since servers cap ``max`` (tasks at 100): the next request simply
  starts at ``offset + len(items)``;
* with neither: a page shorter than requested;
* token style: no next token (missing, ``null`` or ``""``);
* ``max_items`` reached.

A page that does not advance raises :class:`PaginationError` naming the operation: the same
items as the previous page (a server ignoring ``offset``), an empty page while ``hasMore`` is
true, a next token already used (also cycles A -> B -> A over the last
:data:`RECENT_TOKENS`), or more than :data:`MAX_EMPTY_TOKEN_PAGES` empty token pages in a row.

Totals that change during iteration: ``.total`` is the value of the latest page, and the stop
test uses it, so growth is followed and shrinkage stops early; the loop always ends because
every page that continues it advanced the offset by at least one item or produced a fresh
token, and an empty page stops offset iteration.  Offsets are positions: rows inserted or
deleted ahead of the cursor while iterating shift later pages (an item may be seen twice or
skipped), as with any offset-paged API.

``ListWorkflows`` and ``includeTotalSize``: the workflow list has ``hasMore``, which is all
iteration needs, while counting is the costly part of the Platform's query, so it is *not*
requested by default; ``.total`` is then ``None`` (the server answers ``totalSize: 0``).
Pass ``include_total_size=True`` to get the count on ``.total``.

Connections and tasks: every page is a complete JSON response, so its connection is back in
the pool before the page is handed over; breaking out of ``async for`` holds nothing.
With ``prefetch=True`` a request may be in flight: ``aclose()`` (or leaving
``async with``/:func:`contextlib.aclosing`) cancels and awaits it; an iterator dropped without
closing cancels it from ``__del__`` (immediate in CPython when the loop variable goes away).
Memory is flat: the iterator holds the current page (and with prefetch the next one), never
earlier pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from .errors import RequestValidationError, TowerError
from .operations import Operation
from .paging import (
    Paging,
    PagingTable,
    detect_paging,
    paged_operations,
    paging_for,
    unpaged_list_operations,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_EMPTY_TOKEN_PAGES",
    "RECENT_TOKENS",
    "ItemIterator",
    "PageIterator",
    "PaginationError",
    "Paging",
    "PagingTable",
    "detect_paging",
    "iterate_items",
    "iterate_pages",
    "paged_operations",
    "paging_for",
    "unpaged_list_operations",
]

log = logging.getLogger("tower_async.pagination")

DEFAULT_PAGE_SIZE = 100
#: token-style iteration gives up after this many consecutive empty pages (with fresh tokens)
MAX_EMPTY_TOKEN_PAGES = 10
#: how many previous page tokens are remembered to detect a token cycle
RECENT_TOKENS = 16


class PaginationError(TowerError):
    """A paged listing cannot go on: a page did not advance, or the operation is not paged."""

    def __init__(self, operation_id: str, message: str) -> None:
        self.operation_id = operation_id
        super().__init__(f"{operation_id}: {message}")


# -- iteration ------------------------------------------------------------------------------

Call = Callable[..., Awaitable[Any]]


def _pop_param(op: Operation, arguments: dict[str, Any], name: str | None) -> Any:
    """Remove every spelling of parameter ``name`` from ``arguments``; the value given."""
    if name is None:
        return None
    param = op.parameter(name)
    value = None
    for key in [k for k in arguments if op.parameter(k) is param]:
        got = arguments.pop(key)
        if got is not None:
            value = got
    return value


def _non_negative_int(value: Any, what: str, op: Operation | None = None, low: int = 0) -> int:
    """``value`` as an int >= ``low``; ASCII digit strings are accepted (query values)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "positive" if low else "non-negative"
        message = f"must be a {kind} integer, not {value!r}"
        if op is None:
            raise ValueError(f"{what} {message}")
        raise RequestValidationError(op.operation_id, [(what, message)])
    return value


def _positive_int(value: Any, what: str, op: Operation | None = None) -> int:
    return _non_negative_int(value, what, op, low=1)


class _PageFacts:
    """What one page says about iteration, read defensively."""

    __slots__ = ("has_more", "items", "page", "total")

    def __init__(self, paging: Paging, page: Mapping[str, Any], items: list[Any]) -> None:
        self.page = page
        self.items = items
        total = page.get(paging.total_key) if paging.total_key is not None else None
        self.total = total if isinstance(total, int) and not isinstance(total, bool) else None
        more = page.get(paging.has_more_key) if paging.has_more_key is not None else None
        self.has_more = more if isinstance(more, bool) else None


class _OffsetCursor:
    """``max``/``offset`` paging: where the next page starts."""

    def __init__(self, paging: Paging, operation: Operation, args: dict[str, Any]) -> None:
        assert paging.offset_param is not None
        self.param = paging.offset_param
        start = _pop_param(operation, args, paging.offset_param)
        self.offset = _non_negative_int(start, self.param) if start is not None else 0
        self.trust_total = True
        if paging.include_total_param is not None:
            include = _pop_param(operation, args, paging.include_total_param)
            self.trust_total = bool(include)
            if include is not None:
                args[paging.include_total_param] = include
        self._prev_items: list[Any] | None = None

    def where(self) -> str:
        return f"offset={self.offset}"

    def place(self, kwargs: dict[str, Any]) -> None:
        kwargs[self.param] = self.offset

    def forget(self) -> None:
        self._prev_items = None

    def advance(self, facts: _PageFacts, want: int) -> tuple[bool, str | None]:
        """(done, problem) after a page; ``problem`` names a page that does not advance."""
        items, n = facts.items, len(facts.items)
        if n == 0 and facts.has_more:
            return True, (
                f"empty page at offset {self.offset} while hasMore is true "
                "(the listing does not advance)"
            )
        if n and self._prev_items is not None and items == self._prev_items:
            return True, (
                f"the page at offset {self.offset} repeats the previous page "
                "(the server ignores the offset?)"
            )
        self._prev_items = items
        self.offset += n
        if n == 0:
            return True, None
        if facts.has_more is not None:
            return not facts.has_more, None
        if facts.total is not None and self.trust_total:
            return self.offset >= facts.total, None
        return n < want, None


class _TokenCursor:
    """Page-token paging: the token of the next page, and the recent ones (cycles)."""

    trust_total = True

    def __init__(self, paging: Paging, operation: Operation, args: dict[str, Any]) -> None:
        assert paging.token_param is not None and paging.next_token_key is not None
        self.param = paging.token_param
        self.next_key = paging.next_token_key
        self.token: Any = _pop_param(operation, args, paging.token_param) or None
        self._recent: deque[Any] = deque(maxlen=RECENT_TOKENS)
        self._empty_run = 0

    def where(self) -> str:
        return "token"

    def place(self, kwargs: dict[str, Any]) -> None:
        if self.token is not None:
            kwargs[self.param] = self.token

    def forget(self) -> None:
        self._recent.clear()

    def advance(self, facts: _PageFacts, want: int) -> tuple[bool, str | None]:
        """(done, problem) after a page; ``problem`` names a page that does not advance."""
        nxt = facts.page.get(self.next_key)
        if nxt == "":
            nxt = None
        if nxt is not None and (nxt == self.token or nxt in self._recent):
            return True, f"page token {nxt!r} was already used (the listing does not advance)"
        if not facts.items and nxt is not None:
            self._empty_run += 1
            if self._empty_run > MAX_EMPTY_TOKEN_PAGES:
                return True, f"{self._empty_run} empty pages in a row, each with a new page token"
        else:
            self._empty_run = 0
        if self.token is not None:
            self._recent.append(self.token)
        self.token = nxt
        return nxt is None or facts.has_more is False, None


def _cursor(
    paging: Paging, operation: Operation, args: dict[str, Any]
) -> _OffsetCursor | _TokenCursor:
    if paging.style == "offset":
        return _OffsetCursor(paging, operation, args)
    return _TokenCursor(paging, operation, args)


def _page_size(
    paging: Paging, operation: Operation, args: dict[str, Any], page_size: int | None
) -> int:
    given = _pop_param(operation, args, paging.size_param)
    if page_size is None:
        page_size = given if given is not None else DEFAULT_PAGE_SIZE
    elif given is not None and given != page_size:
        raise RequestValidationError(
            operation.operation_id,
            [("page_size", f"page_size={page_size!r} and {paging.size_param}={given!r} disagree")],
        )
    return _positive_int(page_size, "page_size", operation)


class _Pager:
    """Shared state machine of :class:`PageIterator` and :class:`ItemIterator`."""

    def __init__(
        self,
        call: Call,
        operation: Operation,
        paging: Paging,
        arguments: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
        max_items: int | None = None,
        prefetch: bool = False,
    ) -> None:
        try:
            self._setup(call, operation, paging, arguments, page_size, max_items, prefetch)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, RequestValidationError):
                raise
            raise RequestValidationError(operation.operation_id, [("paging", str(exc))]) from None

    def _setup(
        self,
        call: Call,
        operation: Operation,
        paging: Paging,
        arguments: Mapping[str, Any] | None,
        page_size: int | None,
        max_items: int | None,
        prefetch: bool,
    ) -> None:
        self._call = call
        self.operation = operation
        self.paging = paging
        args = dict(arguments or {})
        self.page_size = _page_size(paging, operation, args, page_size)
        if max_items is not None:
            max_items = _non_negative_int(max_items, "max_items", operation)
        self.max_items = max_items
        self.prefetch = bool(prefetch)
        self._cursor = _cursor(paging, operation, args)
        self._arguments = args
        #: the total from the latest page (``totalSize``/``total``), when the server gives one
        self.total: int | None = None
        #: the latest page as the server returned it
        self.last_page: Any = None
        self.pages_fetched = 0
        #: items handed over so far (within ``max_items``)
        self.items_seen = 0
        self._done = False
        self._closed = False
        self._pending: asyncio.Future[Any] | None = None
        self._pending_want = 0

    # -- public state ------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the last page has been fetched (or the iterator was closed)."""
        return self._done

    @property
    def offset(self) -> int:
        """Offset style: where the next page starts."""
        cursor = self._cursor
        return cursor.offset if isinstance(cursor, _OffsetCursor) else 0

    @property
    def next_token(self) -> Any:
        """Token style: the token of the next page (``None`` at the start and at the end)."""
        cursor = self._cursor
        return cursor.token if isinstance(cursor, _TokenCursor) else None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.operation.operation_id} {self._cursor.where()} "
            f"pages={self.pages_fetched} items={self.items_seen} total={self.total} "
            f"{'done' if self._done else 'open'}>"
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop: cancel and await a prefetch in flight.  Safe to call twice."""
        self._done = True
        self._closed = True
        self._cursor.forget()
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            # asyncio.wait never raises the task's error, and lets our own cancellation through.
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: no "exception never retrieved" log

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        pending = self.__dict__.get("_pending")
        if pending is not None:
            _cancel_from_finaliser(pending)

    # -- the state machine -------------------------------------------------------------

    def _want(self) -> int:
        if self.max_items is None:
            return self.page_size
        return min(self.page_size, self.max_items - self.items_seen)

    def _request(self, want: int) -> dict[str, Any]:
        kwargs = dict(self._arguments)
        if self.paging.size_param is not None:
            kwargs[self.paging.size_param] = want
        self._cursor.place(kwargs)
        return kwargs

    def _fail(self, message: str) -> PaginationError:
        self._done = True
        return PaginationError(self.operation.operation_id, message)

    def _items_of(self, page: Any) -> list[Any]:
        if not isinstance(page, Mapping):
            raise self._fail(f"expected a JSON object page, got {type(page).__name__}")
        items = page.get(self.paging.items_key)
        if items is None:
            return []
        if not isinstance(items, list):
            raise self._fail(f"'{self.paging.items_key}' is a {type(items).__name__}, not an array")
        return items

    async def _fetch(self) -> tuple[Any, int]:
        pending, self._pending = self._pending, None
        if pending is not None:
            return await pending, self._pending_want
        want = self._want()
        if want <= 0:
            self._done = True
            raise StopAsyncIteration
        return await self._call(**self._request(want)), want

    async def _next_page(self) -> tuple[Any, list[Any]]:
        """Fetch, check and account for the next page: (page to hand over, its items)."""
        if self._done:
            raise StopAsyncIteration
        page, want = await self._fetch()
        if self._closed:  # closed by another task while we waited
            raise StopAsyncIteration
        items = self._consume(page, want)
        out = page
        if self.max_items is not None:
            room = self.max_items - self.items_seen
            if len(items) > room:  # the server ignored max: hand over no more than asked
                items = items[:room]
                out = {**page, self.paging.items_key: items}
            if self.items_seen + len(items) >= self.max_items:
                self._done = True
        self.items_seen += len(items)
        if self.prefetch and not self._done:
            nxt = self._want()
            if nxt > 0:
                self._pending_want = nxt
                self._pending = asyncio.ensure_future(self._call(**self._request(nxt)))
        return out, items

    def _consume(self, page: Any, want: int) -> list[Any]:
        facts = _PageFacts(self.paging, page, self._items_of(page))
        self.pages_fetched += 1
        self.last_page = page
        self.total = facts.total if self._cursor.trust_total else None
        done, problem = self._cursor.advance(facts, want)
        if problem is not None:
            raise self._fail(problem)
        log.debug(
            "%s: page %d, %d items, %s",
            self.operation.operation_id,
            self.pages_fetched,
            len(facts.items),
            self._cursor.where(),
        )
        if done:
            self._done = True
        return facts.items


def _cancel_from_finaliser(pending: asyncio.Future[Any]) -> None:
    """Cancel a prefetch left behind by an iterator dropped without ``aclose()``."""
    try:
        if pending.done():
            if not pending.cancelled():
                pending.exception()
            return
        loop = pending.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            pending.cancel()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(pending.cancel)
    except Exception:  # never raise from a finaliser (loop closed, shutdown)
        pass


class PageIterator(_Pager):
    """``async for page in tw.list_workflows.pages(...)``: each page as returned (a dict).

    With ``max_items``, a page holding more items than remain is handed over as a shallow
    copy with its array cut (``last_page`` keeps the server's page).
    """

    def __aiter__(self) -> PageIterator:
        return self

    async def __anext__(self) -> Any:
        page, _ = await self._next_page()
        return page

    async def __aenter__(self) -> PageIterator:
        return self


class ItemIterator(_Pager):
    """``async for item in tw.list_workflows.items(...)``: the items of every page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer: Iterator[Any] | None = None

    def __aiter__(self) -> ItemIterator:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._buffer is not None:
                for item in self._buffer:
                    return item
                self._buffer = None
            _, items = await self._next_page()
            self._buffer = iter(items)

    async def __aenter__(self) -> ItemIterator:
        return self

    async def aclose(self) -> None:
        self._buffer = None
        await super().aclose()


# -- entry points used by BoundOperation ----------------------------------------------------


def _bind(
    bound: Any, arguments: Mapping[str, Any]
) -> tuple[Call, Operation, Paging, dict[str, Any]]:
    op: Operation = bound.operation
    found = bound.paging_verdict
    if isinstance(found, str):
        raise PaginationError(op.operation_id, f"not a paged operation: {found}")
    return bound, op, found, dict(arguments)


def _options(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "page_size": args.pop("page_size", None),
        "max_items": args.pop("max_items", None),
        "prefetch": bool(args.pop("prefetch", False)),
    }


def iterate_pages(bound: Any, arguments: Mapping[str, Any]) -> PageIterator:
    """``bound.pages(**arguments)``: a :class:`PageIterator` (raises if not paged)."""
    call, op, paging, args = _bind(bound, arguments)
    return PageIterator(call, op, paging, args, **_options(args))


def iterate_items(bound: Any, arguments: Mapping[str, Any]) -> ItemIterator:
    """``bound.items(**arguments)``: an :class:`ItemIterator` (raises if not paged)."""
    call, op, paging, args = _bind(bound, arguments)
    return ItemIterator(call, op, paging, args, **_options(args))
