"""The session: :class:`Tower`, one aiohttp ClientSession and every bound operation.

The path of one call::

    tw.list_workflows(max=100)                      # BoundOperation for ListWorkflows
      -> build_request(op, ...)                     # sans-I/O, raises before any I/O
      -> validator.validate_request_body(...)       # compiled lazily per operation
      -> send_with_retries(limiter, transport)      # the only places that wait
      -> parse_response(op, raw)                    # sans-I/O: orjson, 204, streams, ApiError
      -> validator.validate_response(...)           # warn / strict / off
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import os
import ssl as ssl_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson

from . import __version__
from .errors import SpecError, TowerError
from .operations import Operation, OperationMap, bind_operations
from .ratelimit import Limiter, get_limiter
from .retries import (
    IDEMPOTENT_METHODS,
    RetryEvent,
    RetryPolicy,
    SystemClock,
    send_with_retries,
)
from .sansio import MISSING, RawResponse, Request, build_request, parse_response
from .spec import SchemaCache, SpecDocument, default_cache_dir, load_document, load_remote
from .transport import AiohttpTransport, make_timeout

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Iterable

    from .orchestration import BulkLaunch, LaunchSpec, ResolvedPipeline, RunResult
    from .pagination import ItemIterator, PageIterator, Paging
    from .retries import Clock
    from .validation import Validator

__all__ = ["DEFAULT_ENDPOINT", "BoundOperation", "Tower"]

log = logging.getLogger("tower_async")

DEFAULT_ENDPOINT = "https://api.cloud.seqera.io"
# Operations never re-sent unless the server provably did not process them.
NEVER_RESEND = frozenset({"CreateWorkflowLaunch"})

Validation = Literal["strict", "warn", "off"]
_MODES = ("strict", "warn", "off")


@dataclass(frozen=True)
class _Bound:
    """What one loaded document gives every session that uses it (shared per process)."""

    api_version: str
    operations: OperationMap
    validator: Validator


_DOCUMENTS: dict[str, _Bound] = {}


def _bound_for(spec: SpecDocument) -> _Bound:
    key = f"{spec.origin}|{spec.sha256}"
    bound = _DOCUMENTS.get(key)
    if bound is None:
        from .validation import Validator  # compiles nothing until first use

        bound = _Bound(spec.api_version, bind_operations(spec.document), Validator(spec.document))
        _DOCUMENTS[key] = bound
    return bound


class BoundOperation:
    """One operation bound to a session: ``await tw.list_workflows(max=10)``.

    Holds no per-call state (only the session and the immutable Operation), so
    any number of tasks can call it at once.  Paged operations also offer
    :meth:`items` and :meth:`pages` (async iterators).
    """

    def __init__(self, tower: Tower, operation: Operation) -> None:
        self._tower = tower
        self.operation = operation
        self.__name__ = operation.python_name
        self.__qualname__ = f"Tower.{operation.python_name}"
        self.__doc__ = operation.doc

    def __get__(self, obj: Any, objtype: Any = None) -> BoundOperation:
        # Being a (non-data) descriptor makes inspect/pydoc treat this as a routine,
        # so help(tw.list_workflows) shows the operation's docstring and signature.
        return self

    @property
    def __signature__(self) -> inspect.Signature:
        params = []
        seen: set[str] = set()
        for p in self.operation.parameters:
            if p.python_name in seen or not p.python_name.isidentifier():
                continue
            seen.add(p.python_name)
            params.append(
                inspect.Parameter(
                    p.python_name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if p.required else None,
                )
            )
        if self.operation.body is not None:
            params.append(
                inspect.Parameter(
                    "body",
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if self.operation.body.required else None,
                )
            )
        for option in ("validation", "timeout"):
            params.append(inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=None))
        return inspect.Signature(params)

    async def __call__(self, **arguments: Any) -> Any:
        return await self._tower._invoke(self.operation, arguments)

    @property
    def tower(self) -> Tower:
        """The session this operation is bound to."""
        return self._tower

    @property
    def document(self) -> Mapping[str, Any]:
        """The (patched) OpenAPI document the operation was bound from."""
        return self._tower.spec.document

    @property
    def paging(self) -> Paging | None:
        """How this operation pages (offset or token), or None when it does not."""
        from .pagination import paging_for

        return paging_for(self.operation, self.document)

    def pages(self, **arguments: Any) -> PageIterator:
        """Async iterator over the pages of a paged operation.

        Takes the operation's arguments plus ``page_size``, ``max_items`` and
        ``prefetch``; ``.total``, ``.last_page`` and ``.pages_fetched`` on the iterator.
        Raises PaginationError if the operation is not paged.
        """
        from .pagination import iterate_pages

        return iterate_pages(self, arguments)

    def items(self, **arguments: Any) -> ItemIterator:
        """Async iterator over the items of every page of a paged operation.

        Same arguments as :meth:`pages`; stops on ``hasMore: false``, the total, or a short
        or empty page, and raises PaginationError on a page that does not advance.
        """
        from .pagination import iterate_items

        return iterate_items(self, arguments)

    def __repr__(self) -> str:
        return f"<bound operation {self.operation.operation_id} of {self._tower!r}>"


def _env_proxy(url: str) -> str | None:
    """The proxy for ``url`` from HTTP(S)_PROXY / NO_PROXY, looked up once per session."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


class Tower:
    """An async session on the Seqera Platform API.

    ::

        async with Tower(workspace=1234) as tw:
            info = await tw.info()
            async for run in tw.list_workflows.items(search="status:FAILED"):
                ...

    ``spec`` is a path (YAML or JSON), a URL, or a parsed mapping; when omitted,
    the server's ``/service-info`` gives the API version and the document is
    taken from the schema cache or downloaded once.  ``token``, ``endpoint`` and
    ``workspace`` default to ``TOWER_ACCESS_TOKEN``, ``TOWER_API_ENDPOINT`` and
    ``TOWER_WORKSPACE_ID``.  ``session`` may be an aiohttp ClientSession owned by
    the caller (then it is not closed here).
    """

    def __init__(
        self,
        spec: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        token: str | None = None,
        endpoint: str | None = None,
        workspace: int | str | None = None,
        *,
        rate_limit: float | None = 20.0,
        adaptive_rate: bool = True,
        validation: Validation = "warn",
        session: aiohttp.ClientSession | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        document_url: str | None = None,
        accept_version: str | None = "1",
        user_agent: str | None = None,
        verify_ssl: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
        proxy: str | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        limiter: Limiter | None = None,
        clock: Clock | None = None,
        validate_document: bool = True,
    ) -> None:
        if validation not in _MODES:
            raise ValueError(f"validation must be one of {_MODES}, not {validation!r}")
        self._spec_source = spec
        self._token = token if token is not None else _env("TOWER_ACCESS_TOKEN")
        self.endpoint = (endpoint or _env("TOWER_API_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        ws = workspace if workspace is not None else _env("TOWER_WORKSPACE_ID")
        if isinstance(ws, str) and ws.isdigit():
            ws = int(ws)
        self.workspace: int | str | None = ws
        self.rate_limit = rate_limit
        self.adaptive_rate = adaptive_rate  # slow the token's bucket down on 429s, recover slowly
        self.validation: Validation = validation
        self._external_session = session
        self._session: aiohttp.ClientSession | None = None
        self._cache = SchemaCache(cache_dir if cache_dir is not None else default_cache_dir())
        self._document_url = document_url
        self._validate_document = validate_document
        self._timeout = make_timeout(timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._on_retry = on_retry
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._limiter_override = limiter
        self._limiter: Limiter | None = None
        self._proxy = proxy
        if not verify_ssl:
            self._ssl: Any = False
        elif ca_file is not None:
            self._ssl = ssl_module.create_default_context(cafile=os.fspath(ca_file))
        else:
            self._ssl = True
        base_headers = {
            "User-Agent": user_agent or f"tower-async/{__version__}",
            "Accept": "application/json",
        }
        if accept_version is not None:
            base_headers["Accept-Version"] = accept_version
        self._anon_headers: dict[str, str] = base_headers
        self._auth_headers: dict[str, str] = dict(base_headers)
        if self._token:
            self._auth_headers["Authorization"] = f"Bearer {self._token}"
        self._bound: _Bound | None = None
        self._spec: SpecDocument | None = None
        self._transport: AiohttpTransport | None = None
        self._methods: dict[str, BoundOperation] = {}
        self._closed = False
        self._resolved_workspace: int | None = ws if isinstance(ws, int) else None
        self.cache: dict[str, Any] = {}  # per-session memo for orchestration helpers

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Tower:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the HTTP session (inside the running loop) and load the document."""
        if self._transport is not None:
            return
        if self._closed:
            raise TowerError("this Tower session is closed; create a new one")
        if self._external_session is not None:
            http = self._external_session
        else:
            # trust_env=False: aiohttp would look up proxies and .netrc in a thread on every
            # request (two executor hops, ~0.5 ms per call); the proxy is resolved once below.
            http = aiohttp.ClientSession(
                trust_env=False, json_serialize=lambda o: orjson.dumps(o).decode()
            )
            self._session = http
        if self._proxy is None:
            self._proxy = _env_proxy(self.endpoint)
        self._transport = AiohttpTransport(http, ssl=self._ssl, proxy=self._proxy)
        if self._timeout is not None:
            self._transport.timeout = self._timeout
        try:
            self._spec = await self._load_spec(http)
            self._bound = _bound_for(self._spec)
            if self._limiter_override is not None:
                self._limiter = self._limiter_override
            else:
                self._limiter = get_limiter(
                    self._token, self.rate_limit, adaptive=self.adaptive_rate
                )
            if isinstance(self.workspace, str):
                from .orchestration import resolve_workspace

                self._resolved_workspace = await resolve_workspace(self, self.workspace)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the HTTP session if this object created it.  Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        self._transport = None
        if session is not None and not session.closed:
            await session.close()

    async def _load_spec(self, http: aiohttp.ClientSession) -> SpecDocument:
        source = self._spec_source

        async def fetch(url: str) -> bytes:
            headers = dict(self._anon_headers)
            headers["Accept"] = "application/yaml, application/json, */*"
            try:
                async with http.get(url, headers=headers, ssl=self._ssl, proxy=self._proxy) as r:
                    if r.status != 200:
                        raise SpecError(f"GET {url} answered {r.status}")
                    return await r.read()
            except aiohttp.ClientError as exc:
                raise SpecError(f"cannot download the OpenAPI document from {url}: {exc}") from None

        if isinstance(source, str) and source.startswith(("http://", "https://")):
            return await load_remote(
                fetch=fetch,
                cache=self._cache,
                url=source,
                validate=self._validate_document,
                to_thread=asyncio.to_thread,
            )
        if source is not None:
            return await asyncio.to_thread(
                load_document, source, cache=self._cache, validate=self._validate_document
            )
        # automatic: the server's API version, then the cache, then a download
        info_url = f"{self.endpoint}/service-info"
        try:
            info = orjson.loads(await fetch(info_url))
            api_version = str(info["serviceInfo"]["apiVersion"])
        except (SpecError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise SpecError(
                f"cannot tell the API version of {self.endpoint} from /service-info ({exc}); "
                "pass spec= (a path, URL or mapping)"
            ) from None
        if self._document_url is not None:
            hit = self._cache.get_by_version(self.endpoint, api_version)
            if hit is not None:
                return hit
            return await load_remote(
                fetch=fetch,
                cache=self._cache,
                url=self._document_url,
                api_version=api_version,
                validate=self._validate_document,
                to_thread=asyncio.to_thread,
            )
        return await load_remote(
            fetch=fetch,
            cache=self._cache,
            endpoint=self.endpoint,
            api_version=api_version,
            validate=self._validate_document,
            to_thread=asyncio.to_thread,
        )

    # -- introspection ---------------------------------------------------------------------

    @property
    def spec(self) -> SpecDocument:
        """The loaded document, its version and where it came from."""
        self._require()
        assert self._spec is not None
        return self._spec

    @property
    def operations(self) -> OperationMap:
        """Mapping operationId -> Operation for every operation of the document."""
        return self._require().operations

    @property
    def validator(self) -> Validator:
        return self._require().validator

    @property
    def http(self) -> aiohttp.ClientSession:
        """The aiohttp ClientSession in use."""
        if self._transport is None:
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        return self._transport.session

    @property
    def workspace_id(self) -> int | None:
        """The session's workspace id (resolved from ``org/workspace`` when given so)."""
        return self._resolved_workspace

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @property
    def token_key(self) -> str:
        """A stable, non-reversible key for the token (its SHA-256), for logs and registries."""
        from .ratelimit import token_key

        return token_key(self._token)

    def _require(self) -> _Bound:
        if self._bound is None:
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        return self._bound

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        state = "open" if self._transport is not None else ("closed" if self._closed else "new")
        return (
            f"<Tower {self.endpoint} workspace={self.workspace!r} token={token} "
            f"validation={self.validation} {state}>"
        )

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        if self._bound is not None:
            names.update(self._bound.operations.python_names)
        return sorted(names)

    def __getattr__(self, name: str) -> BoundOperation:
        if name.startswith("_"):
            raise AttributeError(name)
        bound = self.__dict__.get("_bound")
        if bound is None:
            raise AttributeError(
                f"{name!r}: operations are bound when the session opens "
                "(use 'async with Tower(...) as tw')"
            )
        return self._method(name, bound)

    def _method(self, python_name: str, bound: _Bound) -> BoundOperation:
        method = self._methods.get(python_name)
        if method is not None:
            return method
        op = bound.operations.by_python_name(python_name)
        if op is None:
            close = difflib.get_close_matches(python_name, bound.operations.python_names, n=5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AttributeError(
                f"{type(self).__name__!r} has no operation {python_name!r} "
                f"(API {bound.api_version}){hint}"
            )
        method = BoundOperation(self, op)
        self._methods[python_name] = method
        return method

    def operation(self, name: str) -> BoundOperation:
        """The bound operation by operationId (``ListWorkflows``) or Python name."""
        bound = self._require()
        if name in bound.operations:
            return self._method(bound.operations[name].python_name, bound)
        return self._method(name, bound)

    async def call(self, operation_id: str, /, **arguments: Any) -> Any:
        """Call an operation by operationId: ``await tw.call("ListWorkflows", max=10)``."""
        return await self.operation(operation_id)(**arguments)

    # -- the call path ---------------------------------------------------------------------

    def build(self, operation: Operation | str, **arguments: Any) -> Request:
        """The :class:`Request` a call would send (no I/O); validation included."""
        op = self.operations[operation] if isinstance(operation, str) else operation
        request, _ = self._prepare(op, arguments)
        return request

    def _prepare(self, op: Operation, arguments: dict[str, Any]) -> tuple[Request, Validation]:
        body = arguments.pop("body", MISSING)
        mode: Validation = arguments.pop("validation", None) or self.validation
        if mode not in _MODES:
            raise ValueError(f"validation must be one of {_MODES}, not {mode!r}")
        params = arguments.pop("params", None)
        if params:
            arguments.update(params)
        request = build_request(
            op,
            self.endpoint,
            arguments,
            body=body,
            headers=self._auth_headers if op.needs_auth else self._anon_headers,
            default_workspace=self._resolved_workspace,
        )
        if mode != "off" and body is not MISSING and body is not None and request.body:
            self._require().validator.validate_request_body(op, body, mode)
        return request, mode

    async def _invoke(self, op: Operation, arguments: dict[str, Any]) -> Any:
        transport = self._transport
        if transport is None:
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        timeout = make_timeout(arguments.pop("timeout", None))
        idempotent = arguments.pop("idempotent", None)
        stream = arguments.pop("stream", True)
        on_send = arguments.pop("on_send", None)  # called right before each attempt is sent
        request, mode = self._prepare(op, arguments)
        if op.operation_id in NEVER_RESEND:
            idempotent = False
        elif idempotent is None:
            idempotent = op.method in IDEMPOTENT_METHODS
        streams = bool(stream) and op.streams

        async def attempt() -> RawResponse:
            if on_send is not None:  # the limiter granted the attempt (bulk_launch journals)
                pending = on_send()
                if pending is not None:
                    await pending
            return await transport.send(request, stream=streams, timeout=timeout)

        raw = await send_with_retries(
            attempt,
            operation_id=op.operation_id,
            method=op.method,
            idempotent=bool(idempotent),
            limiter=self._limiter if op.needs_auth else None,
            policy=self._retry,
            clock=self._clock,
            on_retry=self._on_retry,
        )
        data = parse_response(op, request, raw)
        if mode != "off" and raw.stream is None and data is not None:
            self._require().validator.validate_response(
                op, raw.status, raw.content_type, data, mode
            )
        return data

    # -- fan-out helpers (thin delegates to tower_async.orchestration) ---------------------

    async def launch(self, pipeline: LaunchSpec | str | int, /, **overrides: Any) -> str:
        """Launch a pipeline by name (or id, or a LaunchSpec) from its saved launch
        configuration with ``params``, ``revision``, ``profiles``, ``work_dir``,
        ``labels``, ``run_name``... overlaid; returns the workflowId.
        See :func:`tower_async.orchestration.launch`."""
        from .orchestration import launch

        return await launch(self, pipeline, **overrides)

    def bulk_launch(
        self, specs: Iterable[LaunchSpec] | AsyncIterable[LaunchSpec], /, **options: Any
    ) -> BulkLaunch:
        """Launch many specs with bounded concurrency; yields one outcome per item
        (``async with tw.bulk_launch(specs) as outcomes``: leaving it stops launching).
        See :func:`tower_async.orchestration.bulk_launch` (journal, progress, ...)."""
        from .orchestration import bulk_launch

        return bulk_launch(self, specs, **options)

    async def wait_for_run(self, workflow_id: str, /, **options: Any) -> RunResult:
        """Poll a run with backoff until a terminal state (or ``until=``).
        See :func:`tower_async.orchestration.wait_for_run`."""
        from .orchestration import wait_for_run

        return await wait_for_run(self, workflow_id, **options)

    def wait_for_runs(
        self, workflow_ids: Iterable[str], /, **options: Any
    ) -> AsyncIterator[RunResult]:
        """Yield each run as it finishes, sharing the rate budget.
        See :func:`tower_async.orchestration.wait_for_runs`."""
        from .orchestration import wait_for_runs

        return wait_for_runs(self, workflow_ids, **options)

    def follow_log(self, workflow_id: str, /, **options: Any) -> AsyncIterator[str]:
        """Lines of a run's log as it grows, until the run ends.
        See :func:`tower_async.orchestration.follow_log`."""
        from .orchestration import follow_log

        return follow_log(self, workflow_id, **options)

    async def resolve_pipeline(self, pipeline: str | int, /, **options: Any) -> ResolvedPipeline:
        """A pipeline name (exact match over all pages) -> its id and launch configuration."""
        from .orchestration import resolve_pipeline

        return await resolve_pipeline(self, pipeline, **options)

    async def resolve_compute_env(self, name: str | None = None, /, **options: Any) -> str:
        """A compute environment name -> its id; no name -> the primary one."""
        from .orchestration import resolve_compute_env

        return await resolve_compute_env(self, name, **options)
