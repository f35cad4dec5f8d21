"""Exceptions raised by tower-async.

Everything derives from :class:`TowerError`::

    TowerError
    +-- MissingToken                 no token at open (TOWER_ACCESS_TOKEN unset)
    +-- SpecError                    the document could not be loaded or bound
    +-- RequestValidationError       bad arguments, before any I/O (also ValueError)
    |   +-- ArgumentError            positional arguments to an operation (also TypeError)
    +-- ResponseValidationError      a response breaks the document (strict mode)
    +-- TransportError               the HTTP exchange failed
    |   +-- ConnectError             no connection to the endpoint (nothing was sent)
    |   |   +-- CertificateError     TLS certificate verification failed
    |   +-- Timeout                  connect or read timeout (also TimeoutError)
    +-- ApiError                     the Platform answered an error status
        +-- ClientError              4xx (plain for 405, 410, 422, ...)
        |   +-- BadRequest (400), NotFound (404), Conflict (409), RateLimited (429)
        |   +-- Forbidden (403)
        |       +-- Unauthorized (401)
        +-- ServerError              5xx

Messages never contain the access token: the token only ever travels in the
``Authorization`` header, which no exception or log line includes.  A transport
error keeps aiohttp's exception as ``__cause__`` (except aiohttp's response errors,
whose ``request_info`` holds the request headers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._retry_after import parse_retry_after

__all__ = [
    "ApiError",
    "ArgumentError",
    "BadRequest",
    "CertificateError",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "Forbidden",
    "JournalError",
    "JournalLocked",
    "LaunchResponseError",
    "MissingToken",
    "NotFound",
    "OriginError",
    "RateLimited",
    "RedirectError",
    "RequestValidationError",
    "ResponseTooLarge",
    "ResponseValidationError",
    "ServerError",
    "SessionClosed",
    "SpecError",
    "Timeout",
    "TowerError",
    "TransportError",
    "Unauthorized",
    "api_error_for_status",
]


class TowerError(Exception):
    """Root of every error raised by tower-async."""


class SpecError(TowerError):
    """The OpenAPI document could not be loaded, parsed or bound."""


class MissingToken(TowerError):
    """No access token: ``token=`` not given and ``TOWER_ACCESS_TOKEN`` not set.

    Raised by ``Tower.open()`` before any request.  ``Tower(token="")`` opts out
    explicitly, for anonymous calls such as ``GET /service-info``.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"no access token for {endpoint}: set TOWER_ACCESS_TOKEN (or pass token=...); "
            "pass token='' to open a session for anonymous calls only"
        )


class ConfigurationError(TowerError, ValueError):
    """A session or call option is of the wrong kind or out of range (raised before any I/O)."""


class OriginError(TowerError):
    """A request carrying the token was about to leave the endpoint's origin; nothing was sent."""


class ResponseTooLarge(TowerError):
    """A buffered response body grew past ``max_response_bytes`` (after decompression).

    The connection is dropped as soon as the limit is passed; nothing more is read.
    """

    def __init__(self, operation_id: str, method: str, url: str, limit: int) -> None:
        self.operation_id = operation_id
        self.method = method
        self.url = url
        self.limit = limit
        super().__init__(
            f"{operation_id} ({method} {url}): the response body exceeds max_response_bytes="
            f"{limit} (after decompression); stream it or raise the limit"
        )


class _ProblemsMixin:
    operation_id: str
    problems: tuple[tuple[str, str], ...]

    def _format(self, headline: str) -> str:
        if not self.problems:
            return headline
        lines = [headline]
        for path, message in self.problems:
            lines.append(f"  - {path}: {message}" if path else f"  - {message}")
        return "\n".join(lines)


class RequestValidationError(_ProblemsMixin, TowerError, ValueError):
    """Arguments for an operation are invalid; raised before any I/O.

    ``problems`` is a sequence of ``(where, message)`` pairs, ``where`` naming the
    parameter (``query.max``, ``path.workflowId``) or the JSON path in the body
    (``body.launch.computeEnvId``).
    """

    def __init__(
        self,
        operation_id: str,
        problems: Sequence[tuple[str, str]],
    ) -> None:
        self.operation_id = operation_id
        self.problems = tuple(problems)
        super().__init__(self._format(f"invalid request for {operation_id}"))


class ArgumentError(RequestValidationError, TypeError):
    """An operation was called with positional arguments: they are keyword-only."""

    def __init__(self, operation_id: str, python_name: str, count: int) -> None:
        super().__init__(
            operation_id,
            [
                (
                    "",
                    f"{python_name}() takes keyword arguments only ({count} positional "
                    f"given): write {python_name}(name=value, ...)",
                )
            ],
        )


class ResponseValidationError(_ProblemsMixin, TowerError):
    """A response does not match the document (raised in ``strict`` mode)."""

    def __init__(
        self,
        operation_id: str,
        status: int,
        problems: Sequence[tuple[str, str]],
        data: Any = None,
    ) -> None:
        self.operation_id = operation_id
        self.status = status
        self.problems = tuple(problems)
        self.data = data
        super().__init__(
            self._format(f"response {status} of {operation_id} does not match the document")
        )


class TransportError(TowerError):
    """The HTTP exchange failed (connection refused, reset, timeout).

    ``may_have_been_processed`` tells whether the server could have acted on the
    request: False when the connection failed before the request was written.
    For a workflow launch this is the answer to "did it launch?".
    ``retryable`` is False for failures a retry cannot fix (the session was closed).
    """

    retryable = True

    def __init__(
        self,
        operation_id: str,
        method: str,
        url: str,
        reason: str,
        *,
        may_have_been_processed: bool,
    ) -> None:
        self.operation_id = operation_id
        self.method = method
        self.url = url
        self.reason = reason
        self.may_have_been_processed = may_have_been_processed
        hint = (
            "the server may or may not have processed it"
            if may_have_been_processed
            else "the request was not processed"
        )
        super().__init__(f"{operation_id} ({method} {url}) failed: {reason}; {hint}")


class ConnectError(TransportError):
    """No connection to the endpoint (refused, DNS, unreachable); nothing was sent.

    ``host`` names the endpoint's host (and port) the client tried to reach.
    """

    _TEMPLATE = "cannot connect to the endpoint {host} ({reason})"

    def __init__(self, operation_id: str, method: str, url: str, reason: str, *, host: str) -> None:
        self.host = host
        text = self._TEMPLATE.format(host=host, reason=reason)
        super().__init__(operation_id, method, url, text, may_have_been_processed=False)


class CertificateError(ConnectError):
    """The endpoint's TLS certificate did not verify (a private CA, self-signed, expired).

    Trust the CA with ``Tower(verify="/path/to/ca.pem")`` or the ``SSL_CERT_FILE``
    environment variable; ``verify=False`` switches verification off.
    """

    _TEMPLATE = (
        "TLS certificate verification failed for {host} ({reason}); if it uses a private CA, "
        "trust it with Tower(verify='/path/to/ca.pem') or SSL_CERT_FILE=/path/to/ca.pem"
    )


class Timeout(TransportError, TimeoutError):
    """A connect or read timeout; ``may_have_been_processed`` is False for a connect one."""


class SessionClosed(TransportError):
    """The session was closed while the call was in flight (or before it was sent)."""

    retryable = False


class ApiError(TowerError):
    """The Platform answered with an error status."""

    status: int

    def __init__(
        self,
        status: int,
        operation_id: str,
        method: str,
        url: str,
        message: str | None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.operation_id = operation_id
        self.method = method
        self.url = url
        self.message = message
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        self.hint: str | None = None
        #: the whole response (``RawResult``) when the call was made with ``.raw()``
        self.response: Any = None
        text = f"{status} from {operation_id} ({method} {url})"
        if message:
            text += f": {message}"
        super().__init__(text)

    def add_hint(self, hint: str) -> None:
        """Append what the client knows about the cause (e.g. no token was sent)."""
        self.hint = hint
        self.args = (f"{self.args[0]} ({hint})", *self.args[1:])

    def mask_url(self, url: str) -> None:
        """Show ``url`` (the same URL with secret query values masked) instead."""
        self.args = (str(self.args[0]).replace(self.url, url, 1), *self.args[1:])
        self.url = url

    @property
    def may_have_been_processed(self) -> bool:
        """Whether the server may have acted on the request despite the error.

        False for 4xx (refused) and 503/429 (not processed); True for other 5xx, where
        the server failed somewhere in handling it (for a launch: it may have launched).
        """
        return self.status >= 500 and self.status != 503


class ClientError(ApiError):
    """4xx: the server refused the request.  Raised as is for 405, 410, 422, ..."""


class BadRequest(ClientError):
    """400."""


class Forbidden(ClientError):
    """403 (and, via :class:`Unauthorized`, 401): the token is missing, invalid or lacks
    permission.  The Platform often answers 403 for a bad token, so catch this one."""


class Unauthorized(Forbidden):
    """401."""


class NotFound(ClientError):
    """404."""


class Conflict(ClientError):
    """409."""


class RateLimited(ClientError):
    """429: the access token exceeded the Platform's request rate.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    @property
    def retry_after(self) -> float | None:
        body = self.message.encode() if self.message else b""
        return parse_retry_after(self.headers, body)  # header, else "Wait Nsecs" in the message


class ServerError(ApiError):
    """5xx."""


class RedirectError(ApiError):
    """A 3xx: tower-async does not follow redirects (the token must stay with the endpoint).

    ``location`` is where the server pointed (absolute); the message names only its origin.
    """

    def __init__(
        self,
        status: int,
        operation_id: str,
        method: str,
        url: str,
        *,
        location: str,
        body: Any = None,
    ) -> None:
        from urllib.parse import urlsplit

        self.location = location
        try:
            parts = urlsplit(location)
            where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else ""
        except ValueError:
            where = ""
        message = (
            f"redirected to {where or 'an unparseable location'}; redirects are not followed "
            "(point endpoint= at the final URL)"
        )
        super().__init__(status, operation_id, method, url, message, body, None)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def api_error_for_status(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if status >= 400:
        return ClientError
    return ApiError


class LaunchResponseError(TowerError):
    """A launch was answered 2xx, but the answer carries no ``workflowId``.

    The server accepted the request, so the run may exist: ``may_have_been_processed``
    is always True.  Find it by its run name (``find_runs_named``) before launching again.
    """

    may_have_been_processed = True

    def __init__(self, operation_id: str, status: int | None, data: Any) -> None:
        self.operation_id = operation_id
        self.status = status
        self.data = data
        shown = repr(data)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(
            f"{operation_id} answered {status or '2xx'} without a workflowId (got {shown}); "
            "the run may have been launched"
        )


class JournalError(TowerError):
    """A bulk-launch journal cannot be opened, read, locked or written (``path`` names it)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"journal {path}: {message}")


class JournalLocked(JournalError):
    """Another process (``pid``, when known) holds the journal: nothing was launched."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        if pid is not None and pid == os.getpid():
            holder += " (this one: another bulk launch or Journal has it open)"
        super().__init__(
            path, f"is in use by {holder}; wait for it to finish (two runs would launch twice)"
        )
