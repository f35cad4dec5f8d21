"""Paged listings as async iterators: ``tw.list_workflows.items()`` and ``.pages()``.

The Platform's OpenAPI document does not describe paging, so it is inferred per operation
from its query parameters and its success-response schema (:func:`paging_for`, pure and
cached per :class:`~tower_async.operations.Operation`):

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
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from .errors import RequestValidationError, TowerError
from .operations import Operation, resolve_ref

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_EMPTY_TOKEN_PAGES",
    "RECENT_TOKENS",
    "ItemIterator",
    "PageIterator",
    "PaginationError",
    "Paging",
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

_OFFSET_PARAMS = ("offset",)
_OFFSET_SIZE_PARAMS = ("max", "limit")
_TOKEN_PARAMS = ("nextPageToken", "pageToken", "page_token")
_TOKEN_SIZE_PARAMS = ("pageSize", "page_size", "max", "limit")
_NEXT_TOKEN_KEYS = ("nextPageToken", "next_page_token")
_TOTAL_KEYS = ("totalSize", "total")
_HAS_MORE_KEYS = ("hasMore",)
_INCLUDE_TOTAL_PARAMS = ("includeTotalSize",)
_LIST_PREFIXES = ("List", "Explore", "Search")
_PAGING_HINT_KEYS = frozenset({*_TOTAL_KEYS, *_HAS_MORE_KEYS, *_NEXT_TOKEN_KEYS})

Style = Literal["offset", "token"]


class PaginationError(TowerError):
    """A paged listing cannot go on: a page did not advance, or the operation is not paged."""

    def __init__(self, operation_id: str, message: str) -> None:
        self.operation_id = operation_id
        super().__init__(f"{operation_id}: {message}")


@dataclass(frozen=True, slots=True)
class Paging:
    """How one operation pages, as inferred from its parameters and response schema.

    Parameter names are the document's (``max``, ``pageSize``); keys are response properties.
    """

    style: Style
    items_key: str
    size_param: str | None = None
    offset_param: str | None = None
    token_param: str | None = None
    next_token_key: str | None = None
    total_key: str | None = None
    has_more_key: str | None = None
    include_total_param: str | None = None


# -- detection ------------------------------------------------------------------------------


def _kind(document: Mapping[str, Any], schema: Any) -> tuple[str, Mapping[str, Any]]:
    resolved = resolve_ref(document, schema)
    if not isinstance(resolved, Mapping):
        return "any", {}
    kind = resolved.get("type")
    if isinstance(kind, str):
        return kind, resolved
    for key in ("allOf", "oneOf", "anyOf"):
        subs = resolved.get(key)
        if isinstance(subs, list) and len(subs) == 1:
            return _kind(document, subs[0])
    if "properties" in resolved or "allOf" in resolved:
        return "object", resolved
    if "items" in resolved:
        return "array", resolved
    return "any", resolved


def _properties(document: Mapping[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """The properties of an object schema, ``allOf`` parts merged."""
    resolved = resolve_ref(document, schema)
    out: dict[str, Any] = {}
    if not isinstance(resolved, Mapping) or depth > 16:
        return out
    for part in resolved.get("allOf") or ():
        out.update(_properties(document, part, depth + 1))
    props = resolved.get("properties")
    if isinstance(props, Mapping):
        out.update(props)
    return out


def _response_schema(op: Operation) -> Any:
    ok = op.responses.get("200") or op.success_response
    if ok is None:
        return None
    for media, media_obj in ok.content.items():
        base = media.split(";", 1)[0].strip().lower()
        if base == "application/json" or base.endswith("+json") or base == "*/*":
            return media_obj.get("schema")
    return None


def _query_params(op: Operation) -> dict[str, str]:
    """Query parameter name -> JSON kind."""
    return {p.name: p.kind for p in op.parameters if p.location == "query"}


def _first(names: tuple[str, ...], present: Mapping[str, Any]) -> str | None:
    for name in names:
        if name in present:
            return name
    return None


def _whole_list(op: Operation, document: Mapping[str, Any]) -> str:
    """`` (returns the whole list in 'key', with totalSize)`` for the reasons' sake."""
    schema = _response_schema(op)
    if schema is None:
        return ""
    props = _properties(document, schema)
    arrays = [name for name, sub in props.items() if _kind(document, sub)[0] == "array"]
    if len(arrays) != 1:
        return ""
    total = next((k for k in _TOTAL_KEYS if k in props), None)
    return f" (returns the whole list in '{arrays[0]}'" + (f", with {total})" if total else ")")


def detect_paging(op: Operation, document: Mapping[str, Any]) -> Paging | str:
    """The :class:`Paging` of ``op``, or why it is not paged (uncached; see :func:`paging_for`)."""
    query = _query_params(op)
    offset_param = _first(_OFFSET_PARAMS, query)
    offset_size = _first(_OFFSET_SIZE_PARAMS, query)
    token_param = _first(_TOKEN_PARAMS, query)
    if token_param is None and (offset_param is None or offset_size is None):
        if offset_param is not None:
            return f"has '{offset_param}' but no max/limit parameter"
        if offset_size is not None:
            return f"has '{offset_size}' but no offset parameter"
        return "no max/offset or page-token parameters" + _whole_list(op, document)

    schema = _response_schema(op)
    if schema is None:
        return "no JSON success response"
    kind, _ = _kind(document, schema)
    if kind == "array":
        return "the response is a bare JSON array (no place for a total or a token)"
    props = _properties(document, schema)
    if not props:
        return "the response is not an object with properties"
    arrays = [name for name, sub in props.items() if _kind(document, sub)[0] == "array"]
    if not arrays:
        return "response has no array property"
    if len(arrays) > 1:
        return f"response has {len(arrays)} array properties ({', '.join(sorted(arrays))})"
    items_key = arrays[0]

    def kind_of(name: str) -> str:
        return _kind(document, props[name])[0]

    total_key = next((k for k in _TOTAL_KEYS if k in props and kind_of(k) == "integer"), None)
    has_more_key = next((k for k in _HAS_MORE_KEYS if k in props and kind_of(k) == "boolean"), None)
    if token_param is not None:
        next_key = next((k for k in _NEXT_TOKEN_KEYS if k in props), None)
        if next_key is None:
            if offset_param is not None and offset_size is not None:
                token_param = None  # fall through to offset paging
            else:
                return f"takes '{token_param}' but the response has no next-page token"
        else:
            return Paging(
                style="token",
                items_key=items_key,
                size_param=_first(_TOKEN_SIZE_PARAMS, query),
                token_param=token_param,
                next_token_key=next_key,
                total_key=total_key,
                has_more_key=has_more_key,
            )
    include_total = next((p for p in _INCLUDE_TOTAL_PARAMS if query.get(p) == "boolean"), None)
    return Paging(
        style="offset",
        items_key=items_key,
        size_param=offset_size,
        offset_param=offset_param,
        total_key=total_key,
        has_more_key=has_more_key,
        include_total_param=include_total,
    )


_CACHE: dict[Operation, Paging | str] = {}
_CACHE_LIMIT = 8192


def _cached(op: Operation, document: Mapping[str, Any]) -> Paging | str:
    found = _CACHE.get(op)
    if found is None:
        found = detect_paging(op, document)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[op] = found
    return found


def paging_for(op: Operation, document: Mapping[str, Any]) -> Paging | None:
    """How ``op`` pages, or ``None``; cached per operation (operations are immutable)."""
    found = _cached(op, document)
    return found if isinstance(found, Paging) else None


def _list_like(op: Operation, document: Mapping[str, Any]) -> bool:
    if op.method != "GET":
        return False
    oid = op.operation_id
    if oid.startswith(_LIST_PREFIXES) or oid.endswith("List"):
        return True
    query = _query_params(op)
    if any(p in query for p in (*_OFFSET_PARAMS, *_OFFSET_SIZE_PARAMS, *_TOKEN_PARAMS)):
        return True
    schema = _response_schema(op)
    return schema is not None and bool(_PAGING_HINT_KEYS & _properties(document, schema).keys())


def paged_operations(
    operations: Mapping[str, Operation], document: Mapping[str, Any]
) -> dict[str, Paging]:
    """operationId -> :class:`Paging` for every paged operation of a document."""
    out: dict[str, Paging] = {}
    for oid in operations:
        found = paging_for(operations[oid], document)
        if found is not None:
            out[oid] = found
    return out


def unpaged_list_operations(
    operations: Mapping[str, Operation], document: Mapping[str, Any]
) -> dict[str, str]:
    """operationId -> reason, for list-like GET operations that are not paged.

    List-like: the id starts with List/Explore/Search or ends with List, or the operation
    takes a paging parameter, or its response carries a total, ``hasMore`` or a page token.
    """
    out: dict[str, str] = {}
    for oid in operations:
        op = operations[oid]
        if not _list_like(op, document):
            continue
        found = _cached(op, document)
        if isinstance(found, str):
            out[oid] = found
    return out


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


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return value


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
        given_size = _pop_param(operation, args, paging.size_param)
        if page_size is None:
            page_size = given_size if given_size is not None else DEFAULT_PAGE_SIZE
        elif given_size is not None and given_size != page_size:
            raise ValueError(
                f"page_size={page_size!r} and {paging.size_param}={given_size!r} disagree"
            )
        self.page_size = _positive_int(page_size, "page_size")
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0
        ):
            raise ValueError(f"max_items must be a non-negative integer, not {max_items!r}")
        self.max_items = max_items
        self.prefetch = bool(prefetch)
        self._offset = 0
        self._token: Any = None
        self._trust_total = True
        if paging.style == "offset":
            start = _pop_param(operation, args, paging.offset_param)
            if start is not None and not (
                (isinstance(start, int) and not isinstance(start, bool) and start >= 0)
                or (isinstance(start, str) and start.isascii() and start.isdigit())
            ):
                raise ValueError(f"{paging.offset_param} must be a non-negative integer: {start!r}")
            self._offset = int(start) if start is not None else 0
            if paging.include_total_param is not None:
                include = _pop_param(operation, args, paging.include_total_param)
                self._trust_total = bool(include)
                if include is not None:
                    args[paging.include_total_param] = include
        else:
            self._token = _pop_param(operation, args, paging.token_param) or None
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
        self._prev_items: list[Any] | None = None
        self._recent: deque[Any] = deque(maxlen=RECENT_TOKENS)
        self._empty_run = 0

    # -- public state ------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the last page has been fetched (or the iterator was closed)."""
        return self._done

    @property
    def offset(self) -> int:
        """Offset style: where the next page starts."""
        return self._offset

    @property
    def next_token(self) -> Any:
        """Token style: the token of the next page (``None`` at the start and at the end)."""
        return self._token

    def __repr__(self) -> str:
        where = f"offset={self._offset}" if self.paging.style == "offset" else "token"
        return (
            f"<{type(self).__name__} {self.operation.operation_id} {where} "
            f"pages={self.pages_fetched} items={self.items_seen} total={self.total} "
            f"{'done' if self._done else 'open'}>"
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop: cancel and await a prefetch in flight.  Safe to call twice."""
        self._done = True
        self._closed = True
        self._prev_items = None
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
        if pending is None:
            return
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

    # -- the state machine -------------------------------------------------------------

    def _want(self) -> int:
        if self.max_items is None:
            return self.page_size
        return min(self.page_size, self.max_items - self.items_seen)

    def _request(self, want: int) -> dict[str, Any]:
        p = self.paging
        kwargs = dict(self._arguments)
        if p.size_param is not None:
            kwargs[p.size_param] = want
        if p.style == "offset":
            assert p.offset_param is not None
            kwargs[p.offset_param] = self._offset
        elif self._token is not None:
            assert p.token_param is not None
            kwargs[p.token_param] = self._token
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

    async def _next_page(self) -> tuple[Any, list[Any]]:
        """Fetch, check and account for the next page: (page to hand over, its items)."""
        if self._done:
            raise StopAsyncIteration
        pending, self._pending = self._pending, None
        if pending is not None:
            want = self._pending_want
            page = await pending
        else:
            want = self._want()
            if want <= 0:
                self._done = True
                raise StopAsyncIteration
            page = await self._call(**self._request(want))
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
        items = self._items_of(page)
        self.pages_fetched += 1
        self.last_page = page
        p = self.paging
        n = len(items)
        total = page.get(p.total_key) if p.total_key is not None else None
        if isinstance(total, bool) or not isinstance(total, int) or not self._trust_total:
            total = None
        self.total = total
        has_more = page.get(p.has_more_key) if p.has_more_key is not None else None
        if not isinstance(has_more, bool):
            has_more = None
        oid = self.operation.operation_id
        if p.style == "offset":
            if n == 0 and has_more:
                raise self._fail(
                    f"empty page at offset {self._offset} while hasMore is true "
                    "(the listing does not advance)"
                )
            if n and self._prev_items is not None and items == self._prev_items:
                raise self._fail(
                    f"the page at offset {self._offset} repeats the previous page "
                    "(the server ignores the offset?)"
                )
            self._prev_items = items
            self._offset += n
            if n == 0:
                done = True
            elif has_more is not None:
                done = not has_more
            elif total is not None:
                done = self._offset >= total
            else:
                done = n < want
            log.debug(
                "%s: page %d, %d items, offset now %d", oid, self.pages_fetched, n, self._offset
            )
        else:
            assert p.next_token_key is not None
            nxt = page.get(p.next_token_key)
            if nxt == "":
                nxt = None
            if nxt is not None and (nxt == self._token or nxt in self._recent):
                raise self._fail(
                    f"page token {nxt!r} was already used (the listing does not advance)"
                )
            if n == 0 and nxt is not None:
                self._empty_run += 1
                if self._empty_run > MAX_EMPTY_TOKEN_PAGES:
                    raise self._fail(
                        f"{self._empty_run} empty pages in a row, each with a new page token"
                    )
            else:
                self._empty_run = 0
            if self._token is not None:
                self._recent.append(self._token)
            self._token = nxt
            done = nxt is None or has_more is False
            log.debug(
                "%s: page %d, %d items, next token %s", oid, self.pages_fetched, n, nxt is not None
            )
        if done:
            self._done = True
        return items


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
    document = bound.document
    found = _cached(op, document)
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
