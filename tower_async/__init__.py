"""tower-async: an asyncio client for the Seqera Platform (Nextflow Tower) REST API.

Every operation of the Platform's own OpenAPI document is bound at runtime::

    from tower_async import Tower

    async with Tower(workspace=1234) as tw:
        info = await tw.info()
        async for run in tw.list_workflows.items(search="status:FAILED"):
            print(run["workflow"]["id"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    SpecError,
    TowerError,
    TransportError,
)
from .operations import Operation, Parameter
from .session import BoundOperation, Tower
from .spec import SpecWarning

__all__ = [
    "ApiError",
    "BadRequest",
    "BoundOperation",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Operation",
    "Parameter",
    "RateLimited",
    "RequestValidationError",
    "ResponseValidationError",
    "ServerError",
    "SpecError",
    "SpecWarning",
    "Tower",
    "TowerError",
    "TransportError",
    "__version__",
]
