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
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ._modes import MODES as _MODES
from ._neterrors import cause_of, transport_error
from ._plan import RequestPlan, plan_for
from ._typed import TypedOperations
from ._version import __version__
from .clock import SYSTEM_CLOCK, Clock
from .config import DEFAULT_ENDPOINT, TowerConfig, Validation, ssl_option
from .config import check_mode as _check_mode
from .errors import (
    ApiError,
    ArgumentError,
    ConfigurationError,
    Forbidden,
    MissingToken,
    RequestValidationError,
    ResponseValidationError,
    SpecError,
    TowerError,
    TransportError,
)
from .observe import (
    CallObserver,
    Observability,
    RawResult,
    RequestEvent,
    ResponseEvent,
    redact_url,
    sensitive_parameters,
)
from .operations import JSON_MEDIA, Operation, OperationMap, bind_operations
from .ratelimit import Limiter, UnlimitedLimiter, get_limiter
from .retries import (
    IDEMPOTENT_METHODS,
    RetryEvent,
    RetryPolicy,
    _feedback,
    send_with_retries,
)
from .sansio import (
    MISSING,
    RawResponse,
    Request,
    build_request,
    decode_response,
)
from .spec import (
    LOOPBACK_ORIGIN,
    SchemaCache,
    SpecDocument,
    default_cache_dir,
    is_loopback,
    load_document,
    load_remote,
    warn_if_invalid,
)
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    AiohttpTransport,
    GuardedTransport,
    make_timeout,
    origin_of,
    seconds,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable

    from typing_extensions import Unpack

    from ._options import (
        BulkLaunchOptions,
        FollowLogOptions,
        LaunchOverrides,
        WaitForRunsOptions,
        WaitOptions,
    )
    from .abc import Transport
    from .orchestration import (
        BulkLaunch,
        LaunchSpec,
        RelaunchedRun,
        RelaunchOutcome,
        ResolvedPipeline,
        RunResult,
    )
    from .pagination import ItemIterator, PageIterator
    from .paging import Paging, PagingTable
    from .validation import Validator

__all__ = ["DEFAULT_ENDPOINT", "BoundOperation", "Tower"]

log = logging.getLogger("tower_async")

#: seconds one call may take with its retries, unless ``deadline=`` (session or call) says
#: otherwise, or one attempt's ``timeout`` is longer (then that)
DEFAULT_DEADLINE = 120.0
# Operations never re-sent unless the server provably did not process them.
NEVER_RESEND = frozenset({"CreateWorkflowLaunch"})


@dataclass(frozen=True)
class _Bound:
    """What one loaded document gives every session that uses it (shared per process)."""

    api_version: str
    operations: OperationMap
    validator: Validator
    paging: PagingTable


_DOCUMENTS: dict[str, _Bound] = {}


def _bound_for(spec: SpecDocument) -> _Bound:
    key = f"{spec.origin}|{spec.sha256}"
    bound = _DOCUMENTS.get(key)
    if bound is None:
        from .paging import PagingTable
        from .validation import Validator  # compiles nothing until first use

        bound = _Bound(
            spec.api_version,
            bind_operations(spec.document, reserved=_reserved_names()),
            Validator(spec.document),
            PagingTable(spec.document),
        )
        _DOCUMENTS[key] = bound
    return bound


# Public attributes set on every Tower instance (the class's own are read from it).
_INSTANCE_ATTRIBUTES = frozenset(
    {
        "endpoint",
        "workspace",
        "rate_limit",
        "adaptive_rate",
        "validation",
        "memo",
        "config",
        "deadline",
        "max_response_bytes",
        "stream_idle_timeout",
        "stream_total_timeout",
    }
)


def _reserved_names() -> frozenset[str]:
    """Names an operation cannot be bound under: the session's own attributes and methods."""
    return _INSTANCE_ATTRIBUTES | {n for n in dir(Tower) if not n.startswith("_")}


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
        for option in ("validation", "timeout", "deadline"):
            params.append(inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=None))
        return inspect.Signature(params)

    def __call__(self, *args: Any, **arguments: Any) -> Coroutine[Any, Any, Any]:
        # not ``async def``: the coroutine returned is the call itself, one frame less on
        # every resumption (issue 17); any error, positional arguments included, is still
        # raised when it is awaited
        if args:
            return self._refuse(args)
        return self._tower._invoke(self.operation, arguments)

    async def _refuse(self, args: tuple[Any, ...]) -> Any:
        self._positional(args)

    async def raw(self, *args: Any, **arguments: Any) -> RawResult:
        """The call with everything that came back: ``status``, ``headers``, ``data`` (the
        validated data a plain call returns), ``elapsed``, ``attempts`` and ``url`` (query
        values of sensitive parameters masked).  An error status still raises its
        :class:`~tower_async.errors.ApiError`, with this record as ``response``."""
        if args:
            self._positional(args)
        return await self._tower._invoke_raw(self.operation, arguments)

    def _positional(self, args: tuple[Any, ...]) -> None:
        raise ArgumentError(self.operation.operation_id, self.operation.python_name, len(args))

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
        return self._tower._require().paging.get(self.operation)

    @property
    def paging_verdict(self) -> Paging | str:
        """How this operation pages, or why it is not paged."""
        return self._tower._require().paging.verdict(self.operation)

    def pages(self, *args: Any, **arguments: Any) -> PageIterator:
        """Async iterator over the pages of a paged operation.

        Takes the operation's arguments plus ``page_size``, ``max_items`` and
        ``prefetch``; ``.total``, ``.last_page`` and ``.pages_fetched`` on the iterator.
        Raises PaginationError if the operation is not paged.
        """
        from .pagination import iterate_pages

        if args:
            self._positional(args)
        return iterate_pages(self, arguments)

    def items(self, *args: Any, **arguments: Any) -> ItemIterator:
        """Async iterator over the items of every page of a paged operation.

        Same arguments as :meth:`pages`; stops on ``hasMore: false``, the total, or a short
        or empty page, and raises PaginationError on a page that does not advance.
        """
        from .pagination import iterate_items

        if args:
            self._positional(args)
        return iterate_items(self, arguments)

    def __repr__(self) -> str:
        return f"<bound operation {self.operation.operation_id} of {self._tower!r}>"


_OPTION_NAMES = frozenset(
    {"timeout", "deadline", "idle_timeout", "total_timeout", "idempotent", "stream"}
)


@dataclass(frozen=True, slots=True)
class _CallOptions:
    timeout: aiohttp.ClientTimeout | None
    deadline: float | None  # seconds for the whole call, retries included
    idle_timeout: float | None
    total_timeout: float | None
    idempotent: bool | None
    streams: bool


# Arguments that send a call down the general path (_exchange) rather than its plan.
_GENERAL_KEYS = _OPTION_NAMES | {"on_send", "body", "validation", "params"}


@dataclass(slots=True)
class _Facts:
    """What every plain call of one operation on one open session shares (issue 17)."""

    key: tuple[Any, str, float | None, Any]  # (transport, endpoint, deadline, limiter)
    plan: RequestPlan | None
    headers: Mapping[str, str]
    options: _CallOptions
    timeout: aiohttp.ClientTimeout  # the first attempt's
    idempotent: bool
    limited: bool  # the operation goes through the rate limiter
    compiled: bool = False  # the validator has prepared the operation


def _bounded(timeout: aiohttp.ClientTimeout, left: float) -> aiohttp.ClientTimeout:
    """``timeout`` with its total cut to what is left of the call's deadline (kept as it is
    when it ends at most 50 ms past it: the common first attempt builds nothing)."""
    if timeout.total is not None and timeout.total <= left + 0.05:
        return timeout
    return aiohttp.ClientTimeout(
        total=left,
        connect=timeout.connect,
        sock_read=timeout.sock_read,
        sock_connect=timeout.sock_connect,
        ceil_threshold=timeout.ceil_threshold,
    )


def _env_proxy(url: str) -> str | None:
    """The proxy for ``url`` from HTTP(S)_PROXY / NO_PROXY (for the endpoint: once per
    session; for document downloads: per URL)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def _read_capped(response: aiohttp.ClientResponse, url: str) -> bytes:
    """A document download's body, at most ``spec.LIMITS.max_bytes`` (after decompression)."""
    from . import spec as spec_module

    limit = spec_module.LIMITS.max_bytes
    if response.content_length is not None and response.content_length > limit:
        raise SpecError(f"{url}: the document is larger than {limit} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise SpecError(f"{url}: the document is larger than {limit} bytes")
    return bytes(body)


def _deviation(
    op: Operation, status: int, problem: str, mode: Validation, data: Any, reported: set[str]
) -> None:
    """A 2xx whose media type or body is not what the document says: strict raises,
    warn reports once per session and (operation, status, kind), off says nothing."""
    if mode == "strict":
        raise ResponseValidationError(op.operation_id, status, [("", problem)], data)
    key = f"{op.operation_id} {status} {problem[:24]}"
    if mode == "warn" and key not in reported:
        import warnings

        from .validation import TowerValidationWarning

        if len(reported) < 10_000:
            reported.add(key)
        text = f"{op.operation_id} {status} response: {problem} [unexpected-media]"
        logging.getLogger("tower_async.validation").warning("%s", text)
        warnings.warn(text, TowerValidationWarning, stacklevel=4)


class Tower(TypedOperations):
    """An async session on the Seqera Platform API.

    ::

        async with Tower(workspace=1234) as tw:
            info = await tw.info()
            async for run in tw.list_workflows.items(search="status:FAILED"):
                ...

    Every option can be given flat, as below, or grouped in ``config=``
    (:class:`~tower_async.config.TowerConfig`); keyword arguments that differ from their
    defaults replace the config's values.  Options are checked here (ConfigurationError
    naming the option, before any I/O); ``tw.config`` is the checked result.

    The document and the account:
        ``spec``: a path (YAML or JSON), a URL or a parsed mapping; when omitted, the
        server's ``/service-info`` gives the API version and the document comes from the
        schema cache or is downloaded once.  ``token`` (``TOWER_ACCESS_TOKEN``; without one
        ``open()`` raises ``MissingToken``, ``""`` opens for anonymous calls only),
        ``endpoint`` (``TOWER_API_ENDPOINT``, else Seqera Cloud), ``workspace`` (an id or
        ``"org/workspace"``; ``TOWER_WORKSPACE_ID``).  ``cache_dir``: the schema cache;
        ``document_url``: where to download the document; ``validate_document``: check it
        against the OpenAPI schema on load.
    Network (:class:`~tower_async.config.NetworkConfig`):
        ``verify`` (True, False, a CA bundle path or an ``ssl.SSLContext``), ``proxy``,
        ``timeout`` (seconds per attempt, or an ``aiohttp.ClientTimeout``), ``deadline``
        (seconds per call with its retries), ``max_response_bytes``,
        ``stream_idle_timeout`` / ``stream_total_timeout`` (streamed bodies),
        ``accept_version``, ``user_agent``, ``http_session`` (your aiohttp ClientSession,
        left open), ``transport`` (your :class:`~tower_async.abc.Transport` instead of
        aiohttp).  Deprecated: ``session=`` (``http_session=``), ``verify_ssl=`` and
        ``ca_file=`` (``verify=``).
    Limits (:class:`~tower_async.config.LimitsConfig`):
        ``rate_limit`` (calls per second per token, shared by the process; None: off),
        ``adaptive_rate`` (slow down on 429s), ``limiter`` (a ``redis://`` URL shared by
        every host, extra ``redis``, at ``rate_limit``; or a limiter object, which sets its
        own rate: combined with ``rate_limit=``/``adaptive_rate=`` it is an error).
    Retries and time:
        ``retry`` (a :class:`~tower_async.retries.RetryPolicy`), ``clock`` (a
        :class:`~tower_async.clock.Clock`: every wait of the session sleeps on it).
    Validation (:class:`~tower_async.config.ValidationConfig`):
        ``validation``: ``"strict"``, ``"warn"`` (default) or ``"off"``.
    Observability (:mod:`tower_async.observe`):
        ``on_request`` / ``on_response`` get a ``RequestEvent`` / ``ResponseEvent`` per
        attempt, ``on_retry`` a ``RetryEvent`` per retry; ``tracing=True`` makes
        OpenTelemetry spans (extra ``otel``); DEBUG on ``tower_async.http`` logs one redacted
        line per attempt.

    ``tw.memo`` is the per-session memo of the fan-out helpers (``tw.cache``: deprecated).
    """

    def __init__(
        self,
        spec: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        token: str | None = None,
        endpoint: str | None = None,
        workspace: int | str | None = None,
        *,
        config: TowerConfig | None = None,
        rate_limit: float | None = 20.0,
        adaptive_rate: bool = True,
        validation: Validation = "warn",
        http_session: aiohttp.ClientSession | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        document_url: str | None = None,
        accept_version: str | None = "1",
        user_agent: str | None = None,
        verify: bool | str | os.PathLike[str] | ssl_module.SSLContext = True,
        proxy: str | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        limiter: Limiter | str | None = None,
        on_request: Callable[[RequestEvent], None] | None = None,
        on_response: Callable[[ResponseEvent], None] | None = None,
        tracing: bool = False,
        clock: Clock | None = None,
        validate_document: bool = True,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        deadline: float | None = None,
        stream_idle_timeout: float | None = None,
        stream_total_timeout: float | None = None,
        transport: Transport | None = None,
        session: aiohttp.ClientSession | None = None,
        verify_ssl: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        options = {
            "spec": spec,
            "token": token,
            "endpoint": endpoint,
            "workspace": workspace,
            "rate_limit": rate_limit,
            "adaptive_rate": adaptive_rate,
            "validation": validation,
            "http_session": http_session,
            "cache_dir": cache_dir,
            "document_url": document_url,
            "accept_version": accept_version,
            "user_agent": user_agent,
            "verify": verify,
            "proxy": proxy,
            "timeout": timeout,
            "retry": retry,
            "on_retry": on_retry,
            "limiter": limiter,
            "on_request": on_request,
            "on_response": on_response,
            "tracing": tracing,
            "clock": clock,
            "validate_document": validate_document,
            "max_response_bytes": max_response_bytes,
            "deadline": deadline,
            "stream_idle_timeout": stream_idle_timeout,
            "stream_total_timeout": stream_total_timeout,
            "transport": transport,
            "session": session,
            "verify_ssl": verify_ssl,
            "ca_file": ca_file,
        }
        self._configure(TowerConfig.from_kwargs(config, stacklevel=3, **options))

    def _configure(self, config: TowerConfig) -> None:
        """Set the session up from its checked configuration (no I/O)."""
        net, limits = config.network, config.limits
        self.config = config
        self._spec_source = config.spec
        self._token = config.token
        assert net.endpoint is not None  # filled in by TowerConfig.resolved()
        self.endpoint = net.endpoint
        self.max_response_bytes = net.max_response_bytes
        self.deadline = seconds(net.deadline, "deadline")
        self.stream_idle_timeout = seconds(net.stream_idle_timeout, "stream_idle_timeout")
        self.stream_total_timeout = seconds(net.stream_total_timeout, "stream_total_timeout")
        self.workspace: int | str | None = config.workspace
        self.rate_limit = limits.rate
        self.adaptive_rate = limits.adaptive  # slow the token's bucket down on 429s
        self.validation: Validation = config.validation.mode
        self._custom_transport = net.transport
        self._external_session = net.http_session
        self._session: aiohttp.ClientSession | None = None
        cache_dir = config.cache_dir
        self._cache = SchemaCache(cache_dir if cache_dir is not None else default_cache_dir())
        self._user_cache = cache_dir is None  # servers on this machine: one folder, by content
        self._document_url = config.document_url
        self._validate_document = config.validation.validate_document
        self._timeout = make_timeout(net.timeout)
        self._retry = config.retry if config.retry is not None else RetryPolicy()
        self._on_retry = config.observe.on_retry
        # hooks, the tower_async.http log and tracing (tower_async.observe)
        self._observe = Observability(
            on_request=config.observe.on_request,
            on_response=config.observe.on_response,
            on_retry=config.observe.on_retry,
            tracing=config.observe.tracing,
            endpoint=self.endpoint,
        )
        self._clock: Clock = config.clock if config.clock is not None else SYSTEM_CLOCK
        limiter = limits.limiter
        self._limiter_url = limiter if isinstance(limiter, str) else None
        self._limiter_override = None if isinstance(limiter, str) else limiter
        self._limiter: Limiter | None = None
        self._proxy = net.proxy
        # verify=True: the default context (SSL_CERT_FILE/DIR honoured) is made on first use,
        # so an http:// session never pays ~20 ms for loading the system's CA store
        self._ssl_value: Any = None if net.verify is True else ssl_option(net.verify)
        self._set_headers(net.user_agent, net.accept_version)
        self._bound: _Bound | None = None
        self._spec: SpecDocument | None = None
        self._transport: AiohttpTransport | GuardedTransport | None = None
        self._methods: dict[str, BoundOperation] = {}
        self._closed = False
        self._reported: set[str] = set()  # deviations already warned about
        self._plain_options: dict[tuple[bool, float | None], _CallOptions] = {}
        self._facts: dict[str, _Facts] = {}  # per operation: the planned call (issue 17)
        ws = self.workspace
        self._resolved_workspace: int | None = ws if isinstance(ws, int) else None
        self.memo: dict[str, Any] = {}  # per-session memo of the orchestration helpers

    def _ssl(self) -> Any:
        """aiohttp's ``ssl=`` for this session's ``verify`` (made once, when first needed)."""
        if self._ssl_value is None:
            self._ssl_value = ssl_option(True)
        return self._ssl_value

    def _ssl_for(self, url: str) -> Any:
        """``ssl=`` for a request to ``url``: nothing to verify for plain http."""
        return True if url.startswith("http://") and self._ssl_value is None else self._ssl()

    def _set_headers(self, user_agent: str | None, accept_version: str | None) -> None:
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

    @property
    def cache(self) -> dict[str, Any]:
        """Deprecated name of :attr:`memo` (the per-session memo of the fan-out helpers;
        the schema cache is ``cache_dir=``)."""
        import warnings

        warnings.warn("Tower.cache is deprecated: use Tower.memo", DeprecationWarning, stacklevel=2)
        return self.memo

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
        if self._token is None:  # token="" opts out explicitly (anonymous calls only)
            raise MissingToken(self.endpoint)
        if self._custom_transport is not None:
            self._transport = GuardedTransport(
                self._custom_transport,
                token_origin=origin_of(self.endpoint),
                max_response_bytes=self.max_response_bytes,
                timeout=self._timeout or DEFAULT_TIMEOUT,
            )
            await self._bind(self._transport_fetch(self._transport))
            return
        if self._external_session is not None:
            http = self._external_session
        else:
            # trust_env=False: aiohttp would look up proxies and .netrc in a thread on every
            # request (two executor hops, ~0.5 ms per call); the proxy is resolved once below.
            # DummyCookieJar: the Platform authenticates by the bearer token, and a cookie a
            # response sets is never sent back (as the tw CLI does); no per-call jar work.
            http = aiohttp.ClientSession(
                trust_env=False,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session = http
        if self._proxy is None:
            self._proxy = _env_proxy(self.endpoint)
        self._transport = AiohttpTransport(
            http,
            ssl=self._ssl_for(self.endpoint),
            proxy=self._proxy,
            token_origin=origin_of(self.endpoint),
            max_response_bytes=self.max_response_bytes,
            owns_session=self._external_session is None,
        )
        if self._timeout is not None:
            self._transport.timeout = self._timeout
        await self._bind(self._http_fetch(http))

    async def _bind(self, fetch: Callable[[str], Awaitable[bytes]]) -> None:
        """Load and bind the document, pick the limiter, resolve the workspace name."""
        try:
            self._spec = await self._load_spec(fetch)
            self._bound = _bound_for(self._spec)
            if self._limiter_override is not None:
                self._limiter = self._limiter_override
            elif self._limiter_url is not None:
                from .ratelimit_redis import limiter_from_url

                self._limiter = limiter_from_url(
                    self._limiter_url, self._token, self.rate_limit, adaptive=self.adaptive_rate
                )
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
        transport, self._transport = self._transport, None
        if self._limiter_url is not None:  # ours: close its Redis connections
            limiter, self._limiter = self._limiter, None
            aclose = getattr(limiter, "aclose", None)
            if aclose is not None:
                await aclose()
        if transport is not None:  # the aiohttp one closes only a session it made
            await transport.close()
        if session is not None and not session.closed:
            await session.close()

    def _http_fetch(self, http: aiohttp.ClientSession) -> Callable[[str], Awaitable[bytes]]:
        """Document downloads on the aiohttp session (``GET``, status 200, capped)."""
        # proxy= given by the caller is used for every download; one taken from the
        # environment is looked up per URL, so NO_PROXY applies to the document host too.
        env_proxy = self._proxy == _env_proxy(self.endpoint)

        async def fetch(url: str) -> bytes:
            proxy = _env_proxy(url) if env_proxy else self._proxy
            try:
                async with http.get(
                    url, headers=self._document_headers(), ssl=self._ssl_for(url), proxy=proxy
                ) as r:
                    if r.status != 200:
                        raise SpecError(f"GET {url} answered {r.status}")
                    return await _read_capped(r, url)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                # ConnectError naming the endpoint, CertificateError, Timeout, ...
                raise transport_error(exc, "opening the session", "GET", url) from cause_of(exc)

        return fetch

    def _transport_fetch(self, transport: GuardedTransport) -> Callable[[str], Awaitable[bytes]]:
        """Document downloads through a caller's transport (``transport=``)."""

        async def fetch(url: str) -> bytes:
            from . import spec as spec_module

            request = Request("opening the session", "GET", url, self._document_headers())
            raw = await transport.send(request)
            if raw.status != 200:
                raise SpecError(f"GET {url} answered {raw.status}")
            if len(raw.body) > spec_module.LIMITS.max_bytes:
                raise SpecError(
                    f"{url}: the document is larger than {spec_module.LIMITS.max_bytes} bytes"
                )
            return raw.body

        return fetch

    def _document_headers(self) -> dict[str, str]:
        headers = dict(self._anon_headers)
        headers["Accept"] = "application/yaml, application/json, */*"
        return headers

    async def _load_spec(self, fetch: Callable[[str], Awaitable[bytes]]) -> SpecDocument:
        source = self._spec_source

        if isinstance(source, str) and source.startswith(("http://", "https://")):
            return await load_remote(
                fetch=fetch,
                cache=self._cache,
                url=source,
                validate=self._validate_document,
                to_thread=asyncio.to_thread,
                origin=self._filed_under(source),
            )
        if source is not None:
            spec = await asyncio.to_thread(
                load_document,
                source,
                cache=self._cache,
                validate=self._validate_document,
                warn=False,
            )
            warn_if_invalid(spec)  # from this frame: the warning points at the caller
            return spec
        # automatic: the server's API version, then the cache, then a download
        info_url = f"{self.endpoint}/service-info"
        try:
            info = orjson.loads(await fetch(info_url))
            api_version = str(info["serviceInfo"]["apiVersion"])
        except (SpecError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise SpecError(
                f"cannot tell the API version of {self.endpoint} from /service-info ({exc}); "
                "pass spec= (a path, URL or mapping)"
            ) from exc
        # filed under the endpoint (also for document_url=), so the next open finds it
        # there without a download
        origin = self._filed_under(self.endpoint)
        return await load_remote(
            fetch=fetch,
            cache=self._cache,
            url=self._document_url,
            endpoint=self.endpoint,
            api_version=api_version,
            validate=self._validate_document,
            to_thread=asyncio.to_thread,
            origin=origin,
            by_version=origin != LOOPBACK_ORIGIN,
        )

    def _filed_under(self, url: str) -> str:
        """The cache folder of a document loaded from ``url``: its origin, except that in the
        user cache (no ``cache_dir=``) every server on this machine shares one folder and is
        found by content, so a fake Platform on a new port each time adds no folder."""
        return LOOPBACK_ORIGIN if self._user_cache and is_loopback(url) else url

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
        """The aiohttp ClientSession in use (TowerError with ``transport=``: there is none)."""
        if self._transport is None:
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        if isinstance(self._transport, GuardedTransport):
            raise TowerError("this session sends through its transport= and has no aiohttp session")
        return self._transport.session

    @property
    def transport(self) -> Transport:
        """What sends the requests: ``transport=``, or the default
        :class:`~tower_async.transport.AiohttpTransport` once the session is open."""
        if isinstance(self._transport, GuardedTransport):
            return self._transport.inner
        if self._transport is None:
            if self._custom_transport is not None:
                return self._custom_transport
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        return self._transport

    @property
    def clock(self) -> Clock:
        """The session's clock (``clock=``): retries, waits, log following and bulk launches
        read time and sleep on it (:mod:`tower_async.clock`)."""
        return self._clock

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

    if not TYPE_CHECKING:  # checkers see TypedOperations (the generated stubs, if any)

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
        # found by plain attribute lookup from now on, without __getattr__ (issue 17); the
        # name is an operation's, never one of the session's own (bind_operations' reserved)
        self.__dict__[python_name] = method
        return method

    def operation(self, name: str) -> BoundOperation:
        """The bound operation by operationId (``ListWorkflows``) or Python name."""
        bound = self._require()
        if name in bound.operations:
            return self._method(bound.operations[name].python_name, bound)
        return self._method(name, bound)

    async def call(self, operation_id: str, /, *args: Any, **arguments: Any) -> Any:
        """Call an operation by operationId: ``await tw.call("ListWorkflows", max=10)``."""
        return await self.operation(operation_id)(*args, **arguments)

    # -- the call path ---------------------------------------------------------------------

    def build(self, operation: Operation | str, **arguments: Any) -> Request:
        """The :class:`Request` a call would send (no I/O); validation included."""
        op = self.operations[operation] if isinstance(operation, str) else operation
        request, _ = self._prepare(op, arguments)
        return request

    def _prepare(self, op: Operation, arguments: dict[str, Any]) -> tuple[Request, Validation]:
        body = arguments.pop("body", MISSING)
        mode: Validation = arguments.pop("validation", None) or self.validation
        params = arguments.pop("params", None)
        try:
            _check_mode(mode, "validation")
            if params is not None and not isinstance(params, Mapping):
                raise ConfigurationError(
                    f"params must be a mapping of parameter name to value, not {params!r}"
                )
        except ConfigurationError as exc:
            raise RequestValidationError(op.operation_id, [("options", str(exc))]) from None
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
        if mode != "off":  # compiles the operation's schemas on its first call
            sent = body if body is not MISSING and request.body else None
            validator = self._require().validator
            try:
                validator.validate_request_body(op, sent, mode)
            except RequestValidationError:
                raise
            except (TypeError, ValueError, OverflowError, RecursionError):
                if sent is None:
                    raise
                # a value orjson encodes (datetime, UUID, dataclass...) that the validator does
                # not know: hold the JSON that goes on the wire to the document instead
                validator.validate_request_body(op, orjson.loads(request.body or b"null"), mode)
        return request, mode

    def _call_options(self, op: Operation, arguments: dict[str, Any]) -> _CallOptions:
        """Pop and check the per-call options (RequestValidationError when malformed)."""
        if _OPTION_NAMES.isdisjoint(arguments):  # the common case: the session's defaults
            key = (op.streams, self.deadline)
            plain = self._plain_options.get(key)
            if plain is None:
                plain = self._plain_options[key] = self._parse_options(op, {})
            return plain
        return self._parse_options(op, arguments)

    def _parse_options(self, op: Operation, arguments: dict[str, Any]) -> _CallOptions:
        try:
            timeout = make_timeout(arguments.pop("timeout", None))
            deadline = seconds(arguments.pop("deadline", None), "deadline")
            idle = seconds(arguments.pop("idle_timeout", None), "idle_timeout")
            total = seconds(arguments.pop("total_timeout", None), "total_timeout")
            idempotent = arguments.pop("idempotent", None)
            stream = arguments.pop("stream", True)
            for name, flag in (("idempotent", idempotent), ("stream", stream)):
                if flag is not None and not isinstance(flag, bool):
                    raise ConfigurationError(f"{name} must be True, False or None, not {flag!r}")
        except ConfigurationError as exc:
            raise RequestValidationError(op.operation_id, [("options", str(exc))]) from None
        streams = bool(stream) and op.streams
        if deadline is None:
            deadline = self.deadline
        if deadline is None:  # DEFAULT_DEADLINE, or one whole attempt when that is longer
            assert self._transport is not None
            chosen = timeout or (self._transport.stream_timeout if streams else self._timeout)
            longest = (chosen or self._transport.timeout).total
            deadline = max(DEFAULT_DEADLINE, longest or 0.0)
        return _CallOptions(
            timeout,
            deadline,
            idle if idle is not None else self.stream_idle_timeout,
            total if total is not None else self.stream_total_timeout,
            idempotent,
            streams,
        )

    async def _invoke(self, op: Operation, arguments: dict[str, Any]) -> Any:
        """One call's data.  The common call (the session's options, no hook and no request
        log) is built by the operation's plan and its first attempt sent inline: the retry
        machinery is entered only when that attempt's outcome is not a success.  A traced
        session takes the same path, inside the call's span."""
        planned = self._planned(op, arguments) if _GENERAL_KEYS.isdisjoint(arguments) else None
        if planned is None:
            return (await self._exchange(op, arguments, False))[1]
        request, facts, mode, transport = planned
        observer = None
        if self._observe.tracer is not None:
            observer = CallObserver(self._observe, op, request, False)  # starts the span
        raw: RawResponse | None = None
        try:
            started = self._clock.monotonic()
            limiter = self._limiter if facts.limited else None
            sent: Awaitable[RawResponse]
            attempt = None
            if limiter is None:
                if observer is not None:
                    observer.on_attempt(1, 0.0)
                sent = transport.send(request, timeout=facts.timeout)
            else:  # the attempt cuts its timeout to what the wait left of the deadline
                await limiter.acquire()
                if observer is not None:
                    observer.on_attempt(1, self._clock.monotonic() - started)
                attempt = self._attempt(op, request, facts.options, started, None, transport)
                sent = attempt()
            error: TransportError | None = None
            try:
                raw = await sent
            except TransportError as exc:
                error = exc
            if raw is not None and 200 <= raw.status < 400:
                self._succeeded(limiter)
            else:
                if attempt is None:
                    attempt = self._attempt(op, request, facts.options, started, None, transport)
                raw = await self._retry_planned(op, facts, attempt, observer, (raw, error), started)
            data = self._interpret(op, request, raw, mode)
        except BaseException as exc:
            if observer is not None:
                observer.finish(raw, exc, False)
            raise
        if observer is not None:
            observer.finish(raw, None, False)
        return data

    def _succeeded(self, limiter: Limiter | None) -> None:
        """What the retry loop does for a first attempt that succeeded."""
        feedback = None if limiter is None else _feedback(limiter)
        if feedback is not None:
            feedback.on_success()
        self._retry.record_success(0)

    async def _retry_planned(
        self,
        op: Operation,
        facts: _Facts,
        attempt: Callable[[], Awaitable[RawResponse]],
        observer: CallObserver | None,
        first: tuple[RawResponse | None, TransportError | None],
        started: float,
    ) -> RawResponse:
        """A planned call whose first attempt did not succeed: the retry loop from there."""
        retry = self._retry_arguments(op, facts.idempotent, facts.options.deadline)
        if observer is not None:
            retry["on_retry"] = observer.on_retry
            retry["on_attempt"] = observer.on_attempt
        return await send_with_retries(attempt, first=first, started=started, **retry)

    def _facts_for(self, op: Operation, transport: AiohttpTransport | GuardedTransport) -> _Facts:
        options = self._call_options(op, {})
        never = op.operation_id in NEVER_RESEND
        facts = _Facts(
            key=(transport, self.endpoint, self.deadline, self._limiter),
            plan=plan_for(op, self.endpoint),
            # read-only, and a multidict aiohttp takes without converting it
            headers=CIMultiDictProxy(
                CIMultiDict(self._auth_headers if op.needs_auth else self._anon_headers)
            ),
            options=options,
            timeout=_bounded(transport.timeout, options.deadline or DEFAULT_DEADLINE),
            idempotent=not never and op.method in IDEMPOTENT_METHODS,
            # rate_limit=None gives the no-op limiter: nothing to wait for or tell
            limited=op.needs_auth and not isinstance(self._limiter, UnlimitedLimiter),
        )
        self._facts[op.operation_id] = facts
        return facts

    def _planned(
        self, op: Operation, arguments: dict[str, Any]
    ) -> tuple[Request, _Facts, Validation, AiohttpTransport | GuardedTransport] | None:
        """The planned request of a plain call, or None: it needs the general path."""
        transport = self._transport
        facts = self._facts.get(op.operation_id)
        if facts is None or facts.key != (transport, self.endpoint, self.deadline, self._limiter):
            if transport is None:
                return None
            facts = self._facts_for(op, transport)
        mode = self.validation
        plan = facts.plan
        if plan is None or transport is None or mode not in _MODES or self._observe.hooked():
            return None
        request = plan.build(arguments, facts.headers, self._resolved_workspace)
        if request is None:
            return None
        if mode != "off" and not facts.compiled:  # compiles the operation's schemas
            self._require().validator.validate_request_body(op, None, mode)
            facts.compiled = True
        return request, facts, mode, transport

    def _retry_arguments(
        self, op: Operation, idempotent: bool, deadline: float | None
    ) -> dict[str, Any]:
        return {
            "operation_id": op.operation_id,
            "method": op.method,
            "idempotent": idempotent,
            "limiter": self._limiter if op.needs_auth else None,
            "policy": self._retry,
            "clock": self._clock,
            "on_retry": self._on_retry,
            "deadline": deadline,
        }

    def _attempt(
        self,
        op: Operation,
        request: Request,
        options: _CallOptions,
        started: float,
        on_send: Callable[[], Awaitable[None] | None] | None,
        transport: AiohttpTransport | GuardedTransport,
    ) -> Callable[[], Awaitable[RawResponse]]:
        """One attempt of a call that started at ``started`` on the session's clock."""
        clock = self._clock
        until = None if options.deadline is None else started + options.deadline

        async def attempt() -> RawResponse:
            if on_send is not None:  # the limiter granted the attempt (bulk_launch journals)
                pending = on_send()
                if pending is not None:
                    await pending
            timeout = options.timeout
            if until is not None and not options.streams:
                left = until - clock.monotonic()
                if left <= 0:
                    raise TransportError(
                        op.operation_id,
                        op.method,
                        request.url.split("?", 1)[0],
                        f"the call's deadline of {options.deadline:g}s passed before this attempt",
                        may_have_been_processed=False,
                    )
                timeout = _bounded(timeout or transport.timeout, left)
            return await transport.send(
                request,
                stream=options.streams,
                timeout=timeout,
                idle_timeout=options.idle_timeout,
                total_timeout=options.total_timeout,
            )

        return attempt

    async def _invoke_raw(self, op: Operation, arguments: dict[str, Any]) -> RawResult:
        raw, data, observer = await self._exchange(op, arguments, True)
        assert observer is not None
        return observer.result(raw, data)

    async def _exchange(
        self, op: Operation, arguments: dict[str, Any], keep: bool
    ) -> tuple[RawResponse, Any, CallObserver | None]:
        """One call: (response, data, its observer).  ``keep``: observe it (``.raw()``)."""
        transport = self._transport
        if transport is None:
            raise TowerError("the session is not open: use 'async with Tower(...) as tw'")
        on_send = arguments.pop("on_send", None)  # called right before each attempt is sent
        options = self._call_options(op, arguments)
        request, mode = self._prepare(op, arguments)
        idempotent = options.idempotent
        if op.operation_id in NEVER_RESEND:
            idempotent = False
        elif idempotent is None:
            idempotent = op.method in IDEMPOTENT_METHODS
        attempt = self._attempt(op, request, options, self._clock.monotonic(), on_send, transport)

        def send(observer: CallObserver | None) -> Awaitable[RawResponse]:
            retry = self._retry_arguments(op, bool(idempotent), options.deadline)
            if observer is None:
                return send_with_retries(attempt, **retry)
            retry["on_retry"] = observer.on_retry
            return send_with_retries(
                observer.wrap(attempt), on_attempt=observer.on_attempt, **retry
            )

        # -- observability (tower_async.observe): None unless hooks, tracing, DEBUG or keep
        observer = self._observe.begin(op, request, keep)
        if observer is None:
            raw = await send(None)
            return raw, self._interpret(op, request, raw, mode), None
        answer: RawResponse | None = None
        try:
            answer = await send(observer)
            data = self._interpret(op, request, answer, mode)
        except BaseException as exc:
            observer.finish(answer, exc, keep)
            raise
        observer.finish(answer, None, keep)
        return answer, data, observer

    def _interpret(
        self, op: Operation, request: Request, raw: RawResponse, mode: Validation
    ) -> Any:
        status = raw.status
        if 200 <= status < 300 and status != 204 and raw.body and raw.stream is None:
            media = raw.content_type
            if media == JSON_MEDIA:  # what decode_response does with it, without the detour
                try:
                    data = orjson.loads(raw.body)
                except orjson.JSONDecodeError:
                    pass  # decode_response says how it deviates
                else:
                    if mode != "off" and data is not None:
                        self._require().validator.validate_response(op, status, media, data, mode)
                    return data
        try:
            data, deviation = decode_response(op, request, raw)
        except ApiError as exc:
            if "?" in exc.url:  # no secret query value in the message (tower_async.observe)
                exc.mask_url(redact_url(exc.url, sensitive_parameters(op)))
            if isinstance(exc, Forbidden) and not self._token:
                exc.add_hint("the session has no access token: set TOWER_ACCESS_TOKEN or token=")
            raise
        if deviation is not None:
            _deviation(op, raw.status, deviation, mode, data, self._reported)
        elif mode != "off" and raw.stream is None and data is not None:
            self._require().validator.validate_response(
                op, raw.status, raw.content_type, data, mode
            )
        return data

    # -- fan-out helpers (thin delegates to tower_async.orchestration) ---------------------

    async def launch(
        self, pipeline: LaunchSpec | str | int, /, **overrides: Unpack[LaunchOverrides]
    ) -> str:
        """Launch a pipeline by name (or id, or a LaunchSpec) from its saved launch
        configuration with ``params``, ``revision``, ``profiles``, ``work_dir``,
        ``labels``, ``run_name``... overlaid; returns the workflowId.
        See :func:`tower_async.orchestration.launch`."""
        from .orchestration import launch

        return await launch(self, pipeline, **overrides)

    def bulk_launch(
        self,
        specs: Iterable[LaunchSpec] | AsyncIterable[LaunchSpec],
        /,
        **options: Unpack[BulkLaunchOptions],
    ) -> BulkLaunch:
        """Launch many specs with bounded concurrency; yields one outcome per item
        (``async with tw.bulk_launch(specs) as outcomes``: leaving it stops launching).
        See :func:`tower_async.orchestration.bulk_launch` (journal, progress, ...)."""
        from .orchestration import bulk_launch

        return bulk_launch(self, specs, **options)

    async def relaunch(self, workflow_id: str, /, **options: Any) -> RelaunchedRun:
        """Relaunch a run (resumed from its cache unless ``resume=False``) with its launch's
        settings and ``run_name``, ``params``, ``revision``, ``compute_env``... overridden;
        returns the new workflowId. See :func:`tower_async.orchestration.relaunch`."""
        from .orchestration import relaunch

        return await relaunch(self, workflow_id, **options)

    def relaunch_failed(
        self, journal_or_ids: Any, /, **options: Any
    ) -> AsyncIterator[RelaunchOutcome]:
        """Relaunch every FAILED run of a bulk launch (journal or ids) as a bulk launch of
        its own (``journal=``, ``concurrency=``...); yields one outcome per run.
        See :func:`tower_async.orchestration.relaunch_failed`."""
        from .orchestration import relaunch_failed

        return relaunch_failed(self, journal_or_ids, **options)

    async def wait_for_run(self, workflow_id: str, /, **options: Unpack[WaitOptions]) -> RunResult:
        """Poll a run with backoff until a terminal state (or ``until=``).
        See :func:`tower_async.orchestration.wait_for_run`."""
        from .orchestration import wait_for_run

        return await wait_for_run(self, workflow_id, **options)

    def wait_for_runs(
        self, workflow_ids: Iterable[str], /, **options: Unpack[WaitForRunsOptions]
    ) -> AsyncIterator[RunResult]:
        """Yield each run as it finishes, sharing the rate budget.
        See :func:`tower_async.orchestration.wait_for_runs`."""
        from .orchestration import wait_for_runs

        return wait_for_runs(self, workflow_ids, **options)

    def follow_log(
        self, workflow_id: str, /, **options: Unpack[FollowLogOptions]
    ) -> AsyncIterator[str]:
        """Lines of a run's log as it grows, until the run ends.
        See :func:`tower_async.orchestration.follow_log`."""
        from .orchestration import follow_log

        return follow_log(self, workflow_id, **options)

    async def resolve_pipeline(
        self, pipeline: str | int, /, *, workspace: int | str | None = None
    ) -> ResolvedPipeline:
        """A pipeline name (exact match over all pages) -> its id and launch configuration."""
        from .orchestration import resolve_pipeline

        return await resolve_pipeline(self, pipeline, workspace=workspace)

    async def resolve_compute_env(
        self, name: str | None = None, /, *, workspace: int | str | None = None
    ) -> str:
        """A compute environment name -> its id; no name -> the primary one."""
        from .orchestration import resolve_compute_env

        return await resolve_compute_env(self, name, workspace=workspace)
