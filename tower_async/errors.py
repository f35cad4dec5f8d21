"""Exceptions raised by tower-async.

Everything derives from :class:`TowerError`.  Messages never contain the access
token: the token only ever travels in the ``Authorization`` header, which no
exception or log line includes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "JournalError",
    "JournalLocked",
    "LaunchResponseError",
    "NotFound",
    "RateLimited",
    "RequestValidationError",
    "ResponseValidationError",
    "ServerError",
    "SpecError",
    "TowerError",
    "TransportError",
    "api_error_for_status",
]


class TowerError(Exception):
    """Root of every error raised by tower-async."""


class SpecError(TowerError):
    """The OpenAPI document could not be loaded, parsed or bound."""


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
    """

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
        text = f"{status} from {operation_id} ({method} {url})"
        if message:
            text += f": {message}"
        super().__init__(text)

    @property
    def may_have_been_processed(self) -> bool:
        """Whether the server may have acted on the request despite the error.

        False for 4xx (refused) and 503/429 (not processed); True for other 5xx, where
        the server failed somewhere in handling it (for a launch: it may have launched).
        """
        return self.status >= 500 and self.status != 503


class BadRequest(ApiError):
    """400."""


class Forbidden(ApiError):
    """401 or 403: the token is missing, invalid or lacks permission."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409."""


class RateLimited(ApiError):
    """429: the access token exceeded the Platform's request rate.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    @property
    def retry_after(self) -> float | None:
        from .retries import parse_retry_after  # header, else "Wait Nsecs" in the message

        body = self.message.encode() if self.message else b""
        return parse_retry_after(self.headers, body)


class ServerError(ApiError):
    """5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Forbidden,
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
