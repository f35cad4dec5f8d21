"""aiohttp's exceptions -> :class:`~tower_async.errors.TransportError` and its subclasses.

One function, used by the transport (every call) and by the session when it opens
(``/service-info`` and the document download), so both say the same thing about an
unreachable endpoint, a timeout or a certificate the client does not trust.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from .errors import CertificateError, ConnectError, Timeout, TransportError

__all__ = ["cause_of", "describe", "public_url", "transport_error"]


def public_url(url: str) -> str:
    """The URL without its query string (which can be long); never holds the token."""
    return url.split("?", 1)[0]


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {text}" if text else name


def _host(exc: BaseException, url: str) -> str:
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if host is None:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    where = f"{host}:{port}" if port else str(host)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"{where} (the proxy)"
    return where


def transport_error(
    exc: aiohttp.ClientError | asyncio.TimeoutError, operation_id: str, method: str, url: str
) -> TransportError:
    """The library's error for an aiohttp failure of ``method url`` (raise it ``from exc``)."""
    shown = public_url(url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        err = exc.certificate_error
        reason = getattr(err, "verify_message", None) or getattr(err, "reason", None) or str(err)
        return CertificateError(operation_id, method, shown, str(reason), host=_host(exc, url))
    if isinstance(exc, aiohttp.ClientConnectorError):
        # the connection was never made: nothing was sent
        reason = describe(exc.os_error)  # (aiohttp's own text shows the SSL context object)
        return ConnectError(operation_id, method, shown, reason, host=_host(exc, url))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Timeout(operation_id, method, shown, describe(exc), may_have_been_processed=False)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        reason = describe(exc)
        return Timeout(operation_id, method, shown, reason, may_have_been_processed=True)
    # reset, disconnect or a broken body once connected: the request may have been acted on
    return TransportError(operation_id, method, shown, describe(exc), may_have_been_processed=True)


def cause_of(exc: BaseException) -> BaseException | None:
    """What to chain as ``__cause__``: the exception itself, except aiohttp's response errors
    (their ``request_info`` repr shows the request headers, the ``Authorization`` one too)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return None
    return exc
