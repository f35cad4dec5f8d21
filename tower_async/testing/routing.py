"""What the fake's handlers share: the request context, the route table entry, and the
parsing of query parameters, paging and JSON bodies (errors are :class:`ApiFailure`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from aiohttp import web
from multidict import MultiMapping

from .records import ApiFailure, TokenInfo, Workspace
from .state import FakeState

__all__ = [
    "AppInfo",
    "Ctx",
    "HandlerFn",
    "Result",
    "Route",
    "json_body",
    "matching",
    "opt_bool",
    "opt_str",
    "page_of",
    "paging",
    "q_bool",
    "q_int",
    "q_list",
    "workspace_of",
]


class AppInfo(Protocol):
    """What handlers read of the app serving them (a :class:`~.app.FakeApp`)."""

    platform_version: str
    api_version: str
    spec_bytes: bytes


@dataclass
class Ctx:
    request: web.Request
    state: FakeState
    token: TokenInfo | None
    workspace_id: int | None
    query: MultiMapping[str]


Result = Any  # JSON payload, None (-> 204), or a prepared web.StreamResponse
HandlerFn = Callable[[AppInfo, Ctx], Awaitable[Result]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    fn: HandlerFn
    auth: bool = True
    workspace_in_path: bool = False
    #: the handler writes its answer itself (a prepared StreamResponse)
    streams: bool = False


def workspace_of(ctx: Ctx, workspace_id: int | None) -> Workspace | None:
    """The workspace of a record (None: the user's own context, or unknown)."""
    return ctx.state.workspaces.get(workspace_id) if workspace_id is not None else None


# ---------------------------------------------------------------------------- query helpers
def q_int(query: MultiMapping[str], name: str, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiFailure(400, f"Invalid '{name}' parameter: {raw!r}") from None


def q_bool(query: MultiMapping[str], name: str, default: bool = False) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    low = raw.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ApiFailure(400, f"Invalid '{name}' parameter: {raw!r}")


def q_list(query: MultiMapping[str], name: str) -> set[str]:
    out: set[str] = set()
    for raw in query.getall(name, []):
        out.update(p.strip() for p in raw.split(",") if p.strip())
    return out


class _Named(Protocol):
    @property
    def workspace_id(self) -> int | None: ...
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)
_T = TypeVar("_T")


def matching(ctx: Ctx, items: Iterable[_N]) -> list[_N]:
    """The items of the request's workspace whose name contains ``search`` (any case)."""
    search = (ctx.query.get("search") or "").lower()
    return [x for x in items if x.workspace_id == ctx.workspace_id and search in x.name.lower()]


def paging(ctx: Ctx, operation_id: str, default_max: int = 50) -> tuple[int, int]:
    max_ = q_int(ctx.query, "max", default_max)
    offset = q_int(ctx.query, "offset", 0)
    assert max_ is not None and offset is not None
    if max_ < 0 or offset < 0:
        raise ApiFailure(400, "'max' and 'offset' must be >= 0")
    cap = ctx.state.page_caps.get(operation_id)
    if cap is not None:
        max_ = min(max_, cap)
    return max_, offset


def page_of(
    key: str, found: list[_T], max_: int, offset: int, render: Callable[[_T], Any]
) -> dict[str, Any]:
    """``{key: [rendered items of the page], "totalSize": len(found)}``."""
    return {key: [render(x) for x in found[offset : offset + max_]], "totalSize": len(found)}


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise ApiFailure(400, "Missing request body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiFailure(400, "Malformed request body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiFailure(400, "Malformed request body: expected a JSON object")
    return body


def opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiFailure(400, f"Field '{key}' must be a string")
    return value


def opt_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiFailure(400, f"Field '{key}' must be a boolean")
    return value
