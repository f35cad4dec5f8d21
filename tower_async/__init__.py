"""tower-async: an asyncio client for the Seqera Platform (Nextflow Tower) REST API.

Every operation of the Platform's own OpenAPI document is bound at runtime::

    from tower_async import Tower

    async with Tower(workspace=1234) as tw:
        info = await tw.info()
        async for run in tw.list_workflows.items(search="status:FAILED"):
            print(run["workflow"]["id"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    ApiError,
    ArgumentError,
    BadRequest,
    CertificateError,
    ClientError,
    ConfigurationError,
    Conflict,
    ConnectError,
    Forbidden,
    MissingToken,
    NotFound,
    OriginError,
    RateLimited,
    RedirectError,
    RequestValidationError,
    ResponseTooLarge,
    ResponseValidationError,
    ServerError,
    SessionClosed,
    SpecError,
    Timeout,
    TowerError,
    TransportError,
    Unauthorized,
)
from .operations import Operation, Parameter
from .spec import SpecWarning

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from .observe import RawResult, RequestEvent, ResponseEvent
    from .orchestration import (
        AmbiguousName,
        LaunchOutcome,
        LaunchSpec,
        NameNotFound,
        NotResumable,
        RelaunchedRun,
        RelaunchOutcome,
        ResolutionError,
        RunResult,
        WaitTimeout,
    )
    from .pagination import ItemIterator, PageIterator, PaginationError
    from .session import BoundOperation, Tower
    from .validation import TowerValidationWarning

# Imported on first use, so that ``import tower_async`` stays cheap and the sans-I/O core
# (``tower_async.sansio``, ``tower_async.abc``) does not import aiohttp.
_LAZY = {
    "Tower": "session",
    "BoundOperation": "session",
    "PaginationError": "pagination",
    "PageIterator": "pagination",
    "ItemIterator": "pagination",
    "TowerValidationWarning": "validation",
    "LaunchSpec": "orchestration",
    "LaunchOutcome": "orchestration",
    "NameNotFound": "orchestration",
    "AmbiguousName": "orchestration",
    "ResolutionError": "orchestration",
    "WaitTimeout": "orchestration",
    "RawResult": "observe",
    "RequestEvent": "observe",
    "ResponseEvent": "observe",
    "RunResult": "orchestration",
    "NotResumable": "orchestration",
    "RelaunchedRun": "orchestration",
    "RelaunchOutcome": "orchestration",
}


def __getattr__(name: str) -> object:  # not seen by checkers: the imports above are
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tower_async' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AmbiguousName",
    "ApiError",
    "ArgumentError",
    "BadRequest",
    "BoundOperation",
    "CertificateError",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "Forbidden",
    "ItemIterator",
    "LaunchOutcome",
    "LaunchSpec",
    "MissingToken",
    "NameNotFound",
    "NotFound",
    "NotResumable",
    "Operation",
    "OriginError",
    "PageIterator",
    "PaginationError",
    "Parameter",
    "RateLimited",
    "RawResult",
    "RedirectError",
    "RelaunchOutcome",
    "RelaunchedRun",
    "RequestEvent",
    "RequestValidationError",
    "ResolutionError",
    "ResponseEvent",
    "ResponseTooLarge",
    "ResponseValidationError",
    "RunResult",
    "ServerError",
    "SessionClosed",
    "SpecError",
    "SpecWarning",
    "Timeout",
    "Tower",
    "TowerError",
    "TowerValidationWarning",
    "TransportError",
    "Unauthorized",
    "WaitTimeout",
    "__version__",
]
