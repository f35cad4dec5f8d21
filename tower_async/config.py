"""A session's configuration, grouped and typed (frozen dataclasses, as githubkit's ``Config``).

::

    config = TowerConfig(
        token="...",
        workspace="my-org/production",
        network=NetworkConfig(endpoint="https://tower.example.com/api", verify="corp-ca.pem"),
        limits=LimitsConfig(rate=10),
        validation=ValidationConfig(mode="strict"),
    )
    async with Tower(config=config) as tw: ...

``Tower(...)``'s keyword arguments are the same options, flat; given with ``config=``, the
keyword arguments that differ from their defaults replace the config's values.
:meth:`TowerConfig.from_kwargs` does that merge, fills ``token``/``endpoint``/``workspace``
from ``TOWER_ACCESS_TOKEN``/``TOWER_API_ENDPOINT``/``TOWER_WORKSPACE_ID`` and checks every
option, raising :class:`~tower_async.errors.ConfigurationError` (naming the option) before
anything is sent.  ``tw.config`` is the checked result.

Deprecated spellings still work, with a ``DeprecationWarning``: ``session=`` (now
``http_session=``: "the session" is the ``Tower``), ``verify_ssl=False`` and
``ca_file=PATH`` (now ``verify=False`` / ``verify=PATH``).
"""

from __future__ import annotations

import dataclasses
import os
import ssl as ssl_module
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigurationError
from .sansio import base_url
from .transport import DEFAULT_MAX_RESPONSE_BYTES, make_timeout, seconds

if TYPE_CHECKING:
    import aiohttp

    from .abc import Transport
    from .clock import Clock
    from .observe import RequestEvent, ResponseEvent
    from .ratelimit import Limiter
    from .retries import RetryEvent, RetryPolicy

__all__ = [
    "DEFAULT_ENDPOINT",
    "LimitsConfig",
    "NetworkConfig",
    "ObserveConfig",
    "TowerConfig",
    "Validation",
    "ValidationConfig",
]

DEFAULT_ENDPOINT = "https://api.cloud.seqera.io"
DEFAULT_RATE = 20.0

Validation = Literal["strict", "warn", "off"]
MODES = ("strict", "warn", "off")


@dataclass(frozen=True)
class NetworkConfig:
    """Where and how requests go.

    ``endpoint``: the API's base URL (default ``TOWER_API_ENDPOINT``, else Seqera Cloud).
    ``verify``: ``True`` (system CAs, honouring ``SSL_CERT_FILE``/``SSL_CERT_DIR``), ``False``
    (no TLS verification), a CA bundle path, or an ``ssl.SSLContext``.  ``proxy``: an HTTP
    proxy URL (default from ``HTTPS_PROXY``/``NO_PROXY``).  ``timeout``: seconds per attempt
    (or an ``aiohttp.ClientTimeout``; default 120 s total, 15 s to connect).  ``deadline``:
    seconds for one call with its retries (default 120 s, or one attempt's timeout when
    longer).  ``max_response_bytes``: cap on a buffered body (64 MiB).
    ``stream_idle_timeout``/``stream_total_timeout``: limits on reading a streamed body.
    ``accept_version``: the ``Accept-Version`` header (``"1"``; None omits it).
    ``user_agent``: the ``User-Agent`` (default ``tower-async/<version>``).
    ``http_session``: your ``aiohttp.ClientSession`` (left open); ``transport``: your own
    :class:`~tower_async.abc.Transport` instead of aiohttp (then ``verify``, ``proxy`` and
    ``http_session`` do not apply).
    """

    endpoint: str | None = None
    verify: bool | str | os.PathLike[str] | ssl_module.SSLContext = True
    proxy: str | None = None
    timeout: float | aiohttp.ClientTimeout | None = None
    deadline: float | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    stream_idle_timeout: float | None = None
    stream_total_timeout: float | None = None
    accept_version: str | None = "1"
    user_agent: str | None = None
    http_session: aiohttp.ClientSession | None = None
    transport: Transport | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Client-side rate limiting.

    ``rate``: calls per second per access token, shared by every session of the process
    (None: no limit).  ``adaptive``: slow the token's bucket down on 429s, recover slowly.
    ``limiter``: a ``redis://`` URL (one bucket for every process and host using the token,
    at ``rate``; extra ``redis``) or a limiter object, which sets its own rate: then
    ``rate``/``adaptive`` must stay at their defaults (ConfigurationError otherwise).
    """

    rate: float | None = DEFAULT_RATE
    adaptive: bool = True
    limiter: Limiter | str | None = None


@dataclass(frozen=True)
class ValidationConfig:
    """``mode``: check requests and responses against the document: ``"strict"`` raises,
    ``"warn"`` (default) reports once, ``"off"``.  ``validate_document``: check the document
    itself against the OpenAPI schema when it is loaded (a ``SpecWarning`` when not valid)."""

    mode: Validation = "warn"
    validate_document: bool = True


@dataclass(frozen=True)
class ObserveConfig:
    """Hooks (:mod:`tower_async.observe`): ``on_request``/``on_response`` get an event per
    attempt, ``on_retry`` one per retry; ``tracing=True`` makes OpenTelemetry spans (extra
    ``otel``)."""

    on_request: Callable[[RequestEvent], None] | None = None
    on_response: Callable[[ResponseEvent], None] | None = None
    on_retry: Callable[[RetryEvent], None] | None = None
    tracing: bool = False


@dataclass(frozen=True)
class TowerConfig:
    """Everything a :class:`~tower_async.Tower` is made from.

    ``token`` (default ``TOWER_ACCESS_TOKEN``; ``""``: anonymous calls only), ``workspace``
    (an id or ``"org/workspace"``; default ``TOWER_WORKSPACE_ID``), ``spec`` (a path, URL or
    mapping; default: the server's version, from the cache or downloaded), ``cache_dir``
    (the schema cache; default ``TOWER_ASYNC_CACHE_DIR`` or ``~/.cache/tower-async``),
    ``document_url`` (where to download the document from), ``retry`` (a
    :class:`~tower_async.retries.RetryPolicy`, one per session), ``clock`` (a
    :class:`~tower_async.clock.Clock`), and the groups ``network``, ``limits``,
    ``validation``, ``observe``.
    """

    token: str | None = field(default=None, repr=False)
    workspace: int | str | None = None
    spec: str | os.PathLike[str] | Mapping[str, Any] | None = field(default=None, repr=False)
    cache_dir: str | os.PathLike[str] | None = None
    document_url: str | None = None
    network: NetworkConfig = field(default_factory=NetworkConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    observe: ObserveConfig = field(default_factory=ObserveConfig)
    retry: RetryPolicy | None = None
    clock: Clock | None = None

    @classmethod
    def from_kwargs(
        cls, base: TowerConfig | None = None, *, stacklevel: int = 2, **kwargs: Any
    ) -> TowerConfig:
        """``base`` (or the defaults) with ``Tower(...)``'s flat keyword arguments applied
        (those that differ from their defaults), the environment filled in, every option
        checked (ConfigurationError).  ``stacklevel`` points deprecation warnings at the
        caller's frame."""
        config = _merge(base or cls(), _renamed(kwargs, stacklevel + 1))
        return config.resolved()

    def resolved(self) -> TowerConfig:
        """This config with the environment filled in and every option checked."""
        token = self.token if self.token is not None else env("TOWER_ACCESS_TOKEN")
        network = self.network
        endpoint = check_endpoint(network.endpoint or env("TOWER_API_ENDPOINT") or DEFAULT_ENDPOINT)
        workspace = self.workspace if self.workspace is not None else env("TOWER_WORKSPACE_ID")
        if isinstance(workspace, str) and workspace.isdigit():
            workspace = int(workspace)
        config = dataclasses.replace(
            self,
            token=token,
            workspace=workspace,
            network=dataclasses.replace(network, endpoint=endpoint),
        )
        config.check()
        return config

    def check(self) -> None:
        """ConfigurationError for any option of the wrong kind or out of range."""
        net = self.network
        check_mode(self.validation.mode, "validation")
        check_options(
            token=self.token,
            user_agent=net.user_agent,
            accept_version=net.accept_version,
            max_response_bytes=net.max_response_bytes,
            rate_limit=self.limits.rate,
            workspace=self.workspace,
        )
        for name in ("deadline", "stream_idle_timeout", "stream_total_timeout"):
            seconds(getattr(net, name), name)
        make_timeout(net.timeout)
        check_verify(net.verify)
        if net.transport is not None:
            check_transport(net)
        check_limiter(self.limits)


# -- flat keyword arguments -> the groups ------------------------------------------------------

#: ``Tower(...)`` keyword -> (group or "", field)
FLAT: dict[str, tuple[str, str]] = {
    "spec": ("", "spec"),
    "token": ("", "token"),
    "workspace": ("", "workspace"),
    "cache_dir": ("", "cache_dir"),
    "document_url": ("", "document_url"),
    "retry": ("", "retry"),
    "clock": ("", "clock"),
    "endpoint": ("network", "endpoint"),
    "verify": ("network", "verify"),
    "proxy": ("network", "proxy"),
    "timeout": ("network", "timeout"),
    "deadline": ("network", "deadline"),
    "max_response_bytes": ("network", "max_response_bytes"),
    "stream_idle_timeout": ("network", "stream_idle_timeout"),
    "stream_total_timeout": ("network", "stream_total_timeout"),
    "accept_version": ("network", "accept_version"),
    "user_agent": ("network", "user_agent"),
    "http_session": ("network", "http_session"),
    "transport": ("network", "transport"),
    "rate_limit": ("limits", "rate"),
    "adaptive_rate": ("limits", "adaptive"),
    "limiter": ("limits", "limiter"),
    "validation": ("validation", "mode"),
    "validate_document": ("validation", "validate_document"),
    "on_request": ("observe", "on_request"),
    "on_response": ("observe", "on_response"),
    "on_retry": ("observe", "on_retry"),
    "tracing": ("observe", "tracing"),
}

_GROUPS = {
    "network": NetworkConfig,
    "limits": LimitsConfig,
    "validation": ValidationConfig,
    "observe": ObserveConfig,
}


def _default(group: str, name: str) -> Any:
    kind: Any = _GROUPS[group] if group else TowerConfig
    return {f.name: f.default for f in dataclasses.fields(kind)}[name]


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    plain = (bool, int, float, str)
    return type(value) in plain and type(default) in plain and value == default


def _renamed(kwargs: dict[str, Any], stacklevel: int) -> dict[str, Any]:
    """The deprecated spellings mapped to today's names (with a DeprecationWarning)."""
    out = dict(kwargs)
    session = out.pop("session", None)
    verify_ssl = out.pop("verify_ssl", True)
    ca_file = out.pop("ca_file", None)
    if session is not None:
        _deprecated("session=", "http_session=", stacklevel)
        if out.get("http_session") is not None:
            raise ConfigurationError("pass http_session= only (session= is its old name)")
        out["http_session"] = session
    if verify_ssl is not True or ca_file is not None:
        old = "verify_ssl=" if verify_ssl is not True else "ca_file="
        _deprecated(old, "verify=", stacklevel)
        if out.get("verify", True) is not True:
            raise ConfigurationError(f"pass verify= only ({old} is its old spelling)")
        out["verify"] = False if not verify_ssl else ca_file
    return out


def _deprecated(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"Tower({old}...) is deprecated: use {new}", DeprecationWarning, stacklevel=stacklevel + 1
    )


def _merge(base: TowerConfig, kwargs: Mapping[str, Any]) -> TowerConfig:
    top: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for name, value in kwargs.items():
        where = FLAT.get(name)
        if where is None:
            raise ConfigurationError(f"Tower() got an unknown option {name!r}")
        group, attr = where
        if _is_default(value, _default(group, attr)):
            continue  # left at its default: the base config's value stands
        (groups.setdefault(group, {}) if group else top)[attr] = value
    for group, values in groups.items():
        top[group] = dataclasses.replace(getattr(base, group), **values)
    return dataclasses.replace(base, **top) if top else base


# -- checks ------------------------------------------------------------------------------------


def env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def check_mode(mode: Any, what: str) -> None:
    if not isinstance(mode, str) or mode not in MODES:
        raise ConfigurationError(f"{what} must be one of {MODES}, not {mode!r}")


def check_endpoint(endpoint: Any) -> str:
    if not isinstance(endpoint, str):
        raise ConfigurationError(f"endpoint must be a URL string, not {type(endpoint).__name__}")
    base_url(endpoint)  # ConfigurationError unless http(s)://host[:port][/base]
    return endpoint.rstrip("/")


def check_text_option(value: Any, what: str, *, secret: bool = False) -> None:
    """A header value: a str without control characters or lone surrogates."""
    if value is None:
        return
    shown = "" if secret else f" {value!r}"
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__}")
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ConfigurationError(f"{what}{shown} holds control characters or lone surrogates")


def check_options(
    *,
    token: str | None,
    user_agent: Any,
    accept_version: Any,
    max_response_bytes: Any,
    rate_limit: Any,
    workspace: Any,
) -> None:
    """Session options of the wrong kind or out of range: ConfigurationError, before any I/O."""
    check_text_option(token, "token", secret=True)
    check_text_option(user_agent, "user_agent")
    check_text_option(accept_version, "accept_version")
    if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
        raise ConfigurationError(
            f"max_response_bytes must be an integer, not {max_response_bytes!r}"
        )
    if max_response_bytes < 1:
        raise ConfigurationError(f"max_response_bytes must be positive: {max_response_bytes}")
    if rate_limit is not None and not (
        isinstance(rate_limit, (int, float))
        and not isinstance(rate_limit, bool)
        and 0 < rate_limit < float("inf")
    ):
        raise ConfigurationError(f"rate_limit must be calls per second or None: {rate_limit!r}")
    if workspace is not None and (
        isinstance(workspace, bool) or not isinstance(workspace, (int, str))
    ):
        raise ConfigurationError(f"workspace must be an id or 'org/workspace': {workspace!r}")


def check_verify(verify: Any) -> None:
    if not isinstance(verify, (bool, str, os.PathLike, ssl_module.SSLContext)):
        raise ConfigurationError(
            f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {verify!r}"
        )


def check_limiter(limits: LimitsConfig) -> None:
    """``limiter=``: an object (which sets its own rate, so ``rate_limit=``/``adaptive_rate=``
    must stay at their defaults) or a ``redis://`` URL (shared at ``rate_limit``)."""
    limiter = limits.limiter
    if isinstance(limiter, str):
        from .ratelimit_redis import limiter_url_options

        limiter_url_options(limiter, where="Tower(limiter)")
    elif limiter is not None and (limits.rate != DEFAULT_RATE or limits.adaptive is not True):
        raise ConfigurationError(
            "Tower(limiter=...) got a limiter object, which sets its own rate: do not also pass "
            "rate_limit= or adaptive_rate= (a redis:// URL as limiter= uses rate_limit)"
        )


def check_transport(network: NetworkConfig) -> None:
    """``transport=`` sends the requests itself: the aiohttp options cannot apply to it."""
    transport = network.transport
    methods = (getattr(transport, "send", None), getattr(transport, "close", None))
    if not all(callable(m) for m in methods):
        raise ConfigurationError(
            f"transport must have async send(request, ...) and close() "
            f"(tower_async.abc.Transport), not {type(transport).__name__}"
        )
    given = [
        name
        for name, value in (("http_session", network.http_session), ("proxy", network.proxy))
        if value is not None
    ]
    if network.verify is not True:
        given.append("verify")
    if given:
        raise ConfigurationError(
            f"Tower(transport=...) sends the requests itself: {', '.join(given)}= cannot apply "
            "(configure the transport instead)"
        )


# -- what aiohttp gets -------------------------------------------------------------------------

_SSL_CONTEXTS: dict[tuple[str | None, str | None], ssl_module.SSLContext] = {}


def env_ssl_context() -> ssl_module.SSLContext:
    """A default context honouring SSL_CERT_FILE / SSL_CERT_DIR as they are now (aiohttp's
    own default context is made at import, maybe before they were set); one per value."""
    key = (env("SSL_CERT_FILE"), env("SSL_CERT_DIR"))
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        context = _SSL_CONTEXTS[key] = ssl_module.create_default_context()
    return context


def ssl_option(verify: bool | str | os.PathLike[str] | ssl_module.SSLContext) -> Any:
    """``verify`` as aiohttp's ``ssl=``: True, False or an SSLContext (ConfigurationError when
    a CA bundle cannot be read)."""
    if isinstance(verify, ssl_module.SSLContext) or verify is False:
        return verify
    if verify is True:
        return env_ssl_context() if env("SSL_CERT_FILE") or env("SSL_CERT_DIR") else True
    try:
        return ssl_module.create_default_context(cafile=os.fspath(verify))
    except (OSError, ssl_module.SSLError) as exc:
        raise ConfigurationError(
            f"verify={os.fspath(verify)!r}: cannot load the CA bundle ({exc})"
        ) from None
