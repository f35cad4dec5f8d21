"""aiohttp.web application of the fake Platform: routing, auth, rate limit, faults."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
from aiohttp import BodyPartReader, web
from multidict import MultiMapping

from .clock import Clock, MonotonicClock
from .faults import FaultInjector, FaultSpec, apply_drift
from .pagetokens import decode_page_token, encode_page_token
from .ratewindow import SlidingWindow
from .records import TERMINAL, ApiFailure, TokenInfo, Workflow
from .render import (
    compute_env_dto,
    compute_env_entry,
    data_link_dto,
    iso,
    label_dto,
    org_dto,
    workspace_dto,
)
from .runlogs import LOG_LINE, log_line
from .state import FakeState

__all__ = ["DEFAULT_API_VERSION", "FakeApp", "Route", "build_routes"]

log = logging.getLogger("tower_async.testing")

DEFAULT_API_VERSION = "1.181.0-fake"
JSON = "application/json"
_LOG_CHUNK = 64 * 1024
#: routes never subject to fault injection (so a client can always bind its document)
_NO_FAULTS = frozenset({"OpenApiDocument", "NotFound"})


@dataclass
class Ctx:
    request: web.Request
    state: FakeState
    token: TokenInfo | None
    workspace_id: int | None
    query: MultiMapping[str]


Result = Any  # JSON payload, None (-> 204), or a prepared web.StreamResponse
HandlerFn = Callable[["FakeApp", Ctx], Awaitable[Result]]


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


_KEEP_NULL = frozenset({"workspaceId", "workspaceName", "workspaceFullName"})


def strip_nulls(value: Any) -> Any:
    """Drop null members of objects, recursively (not inside ``params``: user data).

    The Platform omits unset optional fields; the document rarely marks them nullable.
    Exception kept on purpose: ``workspaceId``/``workspaceName``/``workspaceFullName`` stay
    null, as in the Platform's per-organization entries of ``ListWorkspacesUser`` (real
    drift from its document, which does not mark them nullable).
    """
    if isinstance(value, dict):
        return {
            k: (v if k == "params" else strip_nulls(v))
            for k, v in value.items()
            if v is not None or k in _KEEP_NULL
        }
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def _error(status: int, message: str | None) -> web.Response:
    if message is None:
        return web.Response(status=status)
    return web.Response(status=status, body=orjson.dumps({"message": message}), content_type=JSON)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _abort(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=499)


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


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiFailure(400, f"Field '{key}' must be a string")
    return value


def _opt_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiFailure(400, f"Field '{key}' must be a boolean")
    return value


# ---------------------------------------------------------------------------- handlers
async def h_service_info(app: FakeApp, ctx: Ctx) -> Result:
    return {
        "serviceInfo": {
            "version": app.platform_version,
            "apiVersion": app.api_version,
            "commitId": "f00dfeed",
            "authTypes": ["github"],
            "loginPath": "/login",
            "landingUrl": None,
            "termsOfUseUrl": None,
            "contentUrl": "https://fake.invalid/content",
            "contentMaxFileSize": 10 * 1024 * 1024,
            "heartbeatInterval": 60,
            "allowInstanceCredentials": False,
            "allowLocalRepos": False,
            "allowNextflowCliLogs": True,
            "userWorkspaceEnabled": True,
            "seqeraCloud": False,
            "waveEnabled": False,
            "groundswellEnabled": False,
            "llmEnabled": False,
        }
    }


async def h_openapi(app: FakeApp, ctx: Ctx) -> Result:
    return web.Response(body=app.spec_bytes, content_type="application/yaml")


async def h_user_info(app: FakeApp, ctx: Ctx) -> Result:
    return {"user": ctx.state.user, "needConsent": False, "defaultWorkspaceId": None}


def _visible_workspaces(ctx: Ctx) -> list[Any]:
    token = ctx.token
    return [ws for ws in ctx.state.workspaces.values() if token is None or token.allows(ws.id)]


async def h_user_workspaces(app: FakeApp, ctx: Ctx) -> Result:
    user_id = ctx.request.match_info["userId"]
    if not user_id.isdigit():
        raise ApiFailure(400, f"Invalid userId '{user_id}'")
    if int(user_id) != ctx.state.user["id"]:
        raise ApiFailure(403, None)
    entries: list[dict[str, Any]] = []
    workspaces = _visible_workspaces(ctx)
    for org in ctx.state.orgs.values():
        mine = [ws for ws in workspaces if ws.org.id == org.id]
        if not mine:
            continue
        entries.append(
            {
                "orgId": org.id,
                "orgName": org.name,
                "orgLogoUrl": None,
                "orgType": "basic",
                "workspaceId": None,
                "workspaceName": None,
                "workspaceFullName": None,
                "visibility": None,
                "roles": ["owner"],
            }
        )
        for ws in mine:
            entries.append(
                {
                    "orgId": org.id,
                    "orgName": org.name,
                    "orgLogoUrl": None,
                    "orgType": "basic",
                    "workspaceId": ws.id,
                    "workspaceName": ws.name,
                    "workspaceFullName": ws.full_name,
                    "visibility": ws.visibility,
                    "roles": ["owner"],
                }
            )
    return {"orgsAndWorkspaces": entries}


async def h_orgs(app: FakeApp, ctx: Ctx) -> Result:
    orgs = [org_dto(o) for o in ctx.state.orgs.values()]
    return {"organizations": orgs, "totalSize": len(orgs)}


async def h_org_workspaces(app: FakeApp, ctx: Ctx) -> Result:
    raw = ctx.request.match_info["orgId"]
    if not raw.isdigit():
        raise ApiFailure(400, f"Invalid orgId '{raw}'")
    org_id = int(raw)
    if org_id not in ctx.state.orgs:
        raise ApiFailure(403, None)
    return {
        "workspaces": [workspace_dto(ws) for ws in _visible_workspaces(ctx) if ws.org.id == org_id]
    }


def _ws_name(ctx: Ctx, workspace_id: int | None) -> str | None:
    ws = ctx.state.workspaces.get(workspace_id) if workspace_id is not None else None
    return ws.name if ws else None


async def h_list_compute_envs(app: FakeApp, ctx: Ctx) -> Result:
    status = ctx.query.get("status")
    name = _ws_name(ctx, ctx.workspace_id)
    envs = [
        compute_env_entry(ce, name)
        for ce in ctx.state.compute_envs.values()
        if ce.workspace_id == ctx.workspace_id and (not status or ce.status == status.upper())
    ]
    return {"computeEnvs": envs}


async def h_describe_compute_env(app: FakeApp, ctx: Ctx) -> Result:
    ce_id = ctx.request.match_info["computeEnvId"]
    ce = ctx.state.compute_envs.get(ce_id)
    if ce is None or ce.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Compute environment '{ce_id}' not found")
    return {"computeEnv": compute_env_dto(ce)}


def _pipeline_dto(ctx: Ctx, p: Any) -> dict[str, Any]:
    ws = ctx.state.workspaces.get(p.workspace_id) if p.workspace_id is not None else None
    user = ctx.state.user
    return {
        "pipelineId": p.id,
        "name": p.name,
        "description": p.description,
        "icon": None,
        "repository": p.repository,
        "userId": user["id"],
        "userName": user["userName"],
        "userFirstName": user["firstName"],
        "userLastName": user["lastName"],
        "orgId": ws.org.id if ws else None,
        "orgName": ws.org.name if ws else None,
        "workspaceId": p.workspace_id,
        "workspaceName": ws.name if ws else None,
        "visibility": "PRIVATE",
        "deleted": False,
        "lastUpdated": iso(ctx.state.clock.now()),
        "optimizationId": None,
        "optimizationTargets": None,
        "optimizationStatus": None,
        "labels": [],
    }


async def h_list_pipelines(app: FakeApp, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListPipelines")
    found = sorted(
        matching(ctx, ctx.state.pipelines.values()), key=lambda p: (p.name.lower(), p.id)
    )
    page = found[offset : offset + max_]
    return {"pipelines": [_pipeline_dto(ctx, p) for p in page], "totalSize": len(found)}


async def h_pipeline_launch(app: FakeApp, ctx: Ctx) -> Result:
    raw = ctx.request.match_info["pipelineId"]
    if not raw.isdigit():
        raise ApiFailure(400, f"Invalid pipelineId '{raw}'")
    p = ctx.state.pipelines.get(int(raw))
    if p is None or p.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Pipeline '{raw}' not found")
    ce = ctx.state.compute_envs[p.compute_env_id]
    now = iso(ctx.state.clock.now())
    return {
        "launch": {
            "id": p.launch_id,
            "computeEnv": compute_env_dto(ce),
            "pipeline": p.repository,
            "workDir": p.work_dir,
            "revision": p.revision,
            "commitId": None,
            "configProfiles": p.config_profiles,
            "configText": None,
            "paramsText": p.params_text,
            "preRunScript": None,
            "postRunScript": None,
            "mainScript": None,
            "entryName": None,
            "schemaName": None,
            "pipelineSchemaId": None,
            "pullLatest": False,
            "resume": False,
            "stubRun": False,
            "runName": None,
            "sessionId": None,
            "towerConfig": None,
            "userSecrets": [],
            "workspaceSecrets": [],
            "workspaceId": p.workspace_id,
            "dateCreated": now,
            "lastUpdated": now,
        }
    }


async def h_launch(app: FakeApp, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    launch = body.get("launch")
    if not isinstance(launch, dict):
        raise ApiFailure(400, "Malformed request body: missing 'launch' object")
    token = ctx.token.token if ctx.token else ""
    wf = ctx.state.launch(ctx.workspace_id, launch, token)
    return {"workflowId": wf.id}


async def h_workflow_launch(app: FakeApp, ctx: Ctx) -> Result:
    return {"launch": ctx.state.workflow_launch(_get_wf(ctx))}


def _ws_extras(ctx: Ctx, wf: Workflow) -> dict[str, Any]:
    ws = ctx.state.workspaces.get(wf.workspace_id) if wf.workspace_id is not None else None
    return {
        "orgId": ws.org.id if ws else None,
        "orgName": ws.org.name if ws else None,
        "workspaceId": wf.workspace_id,
        "workspaceName": ws.name if ws else None,
    }


async def h_list_workflows(app: FakeApp, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListWorkflows")
    attributes = q_list(ctx.query, "attributes")
    include_total = q_bool(ctx.query, "includeTotalSize", False)
    state = ctx.state
    found = state.list_workflows(ctx.workspace_id, ctx.query.get("search"))
    page = found[offset : offset + max_]
    minimal = "minimal" in attributes
    items: list[dict[str, Any]] = []
    for wf in page:
        item: dict[str, Any] = {"workflow": state.workflow_dto(wf), **_ws_extras(ctx, wf)}
        if not minimal:
            item["progress"] = state.progress(wf)
            item["starred"] = False
        if "labels" in attributes:
            item["labels"] = state.workflow_labels(wf)
        if "optimized" in attributes:
            item["optimized"] = False
        items.append(item)
    return {
        "workflows": items,
        "totalSize": len(found) if include_total else 0,
        "hasMore": offset + len(page) < len(found),
    }


def _get_wf(ctx: Ctx) -> Workflow:
    return ctx.state.get_workflow(ctx.request.match_info["workflowId"], ctx.workspace_id)


async def h_describe_workflow(app: FakeApp, ctx: Ctx) -> Result:
    state = ctx.state
    wf = _get_wf(ctx)
    dto = state.workflow_dto(wf)
    dto.update(
        {
            "configProfiles": wf.config_profiles,
            "logFile": f"{wf.work_dir}/nf-{wf.id}.log",
            "outFile": f"{wf.work_dir}/nf-{wf.id}.txt",
            "operationId": f"job-{wf.id.lower()}",
            "towerConfig": None,
            "preRunScript": None,
            "postRunScript": None,
            "nextflowConfig": None,
        }
    )
    status = dto["status"]
    ce = state.compute_envs.get(wf.compute_env_id)
    return {
        "workflow": dto,
        "progress": state.progress(wf),
        "platform": {"id": ce.platform if ce else "aws-batch", "name": "AWS Batch"},
        "jobInfo": {
            "id": int.from_bytes(wf.id.encode()[:6], "big") % 10_000_000,
            "operationId": f"job-{wf.id.lower()}",
            "message": None,
            "status": {"SUBMITTED": "SUBMITTED", "RUNNING": "RUNNING"}.get(status, "TERMINATED"),
            "exitCode": {"SUCCEEDED": 0, "FAILED": 1}.get(status),
        },
        "labels": state.workflow_labels(wf),
        "optimized": False,
        "messages": [],
        **_ws_extras(ctx, wf),
    }


async def h_delete_workflow(app: FakeApp, ctx: Ctx) -> Result:
    ctx.state.delete(_get_wf(ctx))
    return None


async def h_cancel_workflow(app: FakeApp, ctx: Ctx) -> Result:
    ctx.state.cancel(_get_wf(ctx))
    return None


async def h_progress(app: FakeApp, ctx: Ctx) -> Result:
    return {"progress": ctx.state.progress(_get_wf(ctx))}


async def h_tasks(app: FakeApp, ctx: Ctx) -> Result:
    wf = _get_wf(ctx)
    max_, offset = paging(ctx, "ListWorkflowTasks", default_max=10)
    tasks = ctx.state.tasks(wf)
    search = (ctx.query.get("search") or "").lower()
    if search:
        tasks = [t for t in tasks if search in t["name"].lower()]
    return {"tasks": [{"task": t} for t in tasks[offset : offset + max_]], "total": len(tasks)}


async def h_download_log(app: FakeApp, ctx: Ctx) -> Result:
    state = ctx.state
    wf = _get_wf(ctx)
    length = state.log_length(wf)
    footer = state.log_footer(wf)
    file_name = ctx.query.get("fileName") or f"nf-{wf.id}.log"
    resp = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/plain",
            "Content-Disposition": f'attachment; filename="{file_name}"',
        },
    )
    resp.enable_chunked_encoding()
    await resp.prepare(ctx.request)
    lines_per_chunk = _LOG_CHUNK // LOG_LINE
    sent = 0
    i = 0
    while sent < length:
        block = b"".join(log_line(wf.id, n) for n in range(i, i + lines_per_chunk))
        i += lines_per_chunk
        block = block[: length - sent]
        await resp.write(block)
        sent += len(block)
    if footer:
        await resp.write(footer)
    await resp.write_eof()
    return resp


_LOG_CURSOR = "line:"
#: ``maxLength`` when the client sends none (the fake's choice; the document gives no default)
LOG_DEFAULT_MAX_LENGTH = 64 * 1024


def encode_log_cursor(line: int) -> str:
    return base64.urlsafe_b64encode(f"{_LOG_CURSOR}{line}".encode()).decode().rstrip("=")


def decode_log_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(_LOG_CURSOR):
            raise ValueError(token)
        line = int(raw[len(_LOG_CURSOR) :])
        if line < 0:
            raise ValueError(token)
        return line
    except (ValueError, UnicodeDecodeError):
        raise ApiFailure(400, f"Invalid log cursor 'next': {token!r}") from None


async def h_workflow_log(app: FakeApp, ctx: Ctx) -> Result:
    """``GetWorkflowLog``: a page of the run's log lines from the ``next`` cursor on.

    ``entries`` are complete lines (the download's text), at most ``maxLength`` bytes of
    them counting one newline each, but always at least one line when one is available, so
    a client always moves forward. ``forwardToken`` is the cursor after the page (also when
    the page is empty: pass it back to wait for more), ``rewindToken`` the cursor of the
    page itself; ``truncated`` says more lines are available right now; ``pending`` says
    the run is active, so the log will still grow.
    """
    state = ctx.state
    wf = _get_wf(ctx)
    token = ctx.query.get("next")
    start = decode_log_cursor(token) if token else 0
    max_length = q_int(ctx.query, "maxLength", LOG_DEFAULT_MAX_LENGTH)
    assert max_length is not None
    if max_length < 1:
        raise ApiFailure(400, "'maxLength' must be >= 1")
    status = state.status(wf)
    # lines are LOG_LINE bytes with their newline (the closing line is shorter): read one
    # line more than fits, to know whether the page was cut
    lines = state.log_entries(wf, start, start + max(1, max_length // LOG_LINE) + 1)
    entries: list[str] = []
    used = 0
    for line in lines:
        size = len(line.encode()) + 1
        if entries and used + size > max_length:
            break
        used += size
        entries.append(line)
    file_name = f"nf-{wf.id}.log"
    return {
        "log": {
            "entries": entries,
            "truncated": len(entries) < len(lines),
            "rewindToken": encode_log_cursor(start),
            "forwardToken": encode_log_cursor(start + len(entries)),
            "pending": status not in TERMINAL,
            "message": "Waiting for the run to start" if status == "SUBMITTED" else None,
            "downloads": [
                {"fileName": file_name, "displayText": "Nextflow log file", "saveName": file_name}
            ],
        }
    }


async def h_list_labels(app: FakeApp, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListLabels", default_max=100)
    kind = (ctx.query.get("type") or "all").lower()
    if kind not in ("all", "simple", "resource"):
        raise ApiFailure(400, f"Invalid label type '{kind}'")
    is_default = ctx.query.get("isDefault")
    want_default = None if is_default is None else q_bool(ctx.query, "isDefault")
    found = [
        lab
        for lab in matching(ctx, ctx.state.labels.values())
        if (kind == "all" or lab.resource == (kind == "resource"))
        and (want_default is None or lab.is_default == want_default)
    ]
    return {
        "labels": [label_dto(lab) for lab in found[offset : offset + max_]],
        "totalSize": len(found),
    }


_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,38}$")


async def h_create_label(app: FakeApp, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    name = _opt_str(body, "name")
    if not name or not _LABEL_NAME.match(name):
        raise ApiFailure(400, "Invalid label name")
    value = _opt_str(body, "value")
    resource = _opt_bool(body, "resource")
    is_default = _opt_bool(body, "isDefault")
    if resource and not value:
        raise ApiFailure(400, "Resource labels need a 'value'")
    if not resource and value is not None:
        raise ApiFailure(400, "Only resource labels have a 'value'")
    for lab in ctx.state.labels.values():
        if (lab.workspace_id, lab.name, lab.value, lab.resource) == (
            ctx.workspace_id,
            name,
            value,
            resource,
        ):
            break
    else:
        lab = ctx.state.add_label(
            ctx.workspace_id, name, value, resource=resource, is_default=is_default
        )
    return {
        "id": lab.id,
        "name": lab.name,
        "value": lab.value,
        "resource": lab.resource,
        "isDefault": lab.is_default,
    }


async def h_list_datasets(app: FakeApp, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListDatasetsV2", default_max=100)
    found = matching(ctx, ctx.state.datasets.values())
    return {
        "datasets": [ctx.state.dataset_dto(ds) for ds in found[offset : offset + max_]],
        "totalSize": len(found),
    }


async def h_list_datasets_ws(app: FakeApp, ctx: Ctx) -> Result:
    found = [ds for ds in ctx.state.datasets.values() if ds.workspace_id == ctx.workspace_id]
    return {"datasets": [ctx.state.dataset_dto(ds) for ds in found], "totalSize": len(found)}


async def h_create_dataset(app: FakeApp, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    name = _opt_str(body, "name")
    if not name or not name.strip():
        raise ApiFailure(400, "Missing dataset 'name'")
    description = _opt_str(body, "description")
    ds = ctx.state.create_dataset(ctx.workspace_id, name, description)
    return {"dataset": ctx.state.dataset_dto(ds)}


async def h_upload_dataset(app: FakeApp, ctx: Ctx) -> Result:
    ds_id = ctx.request.match_info["datasetId"]
    ds = ctx.state.datasets.get(ds_id)
    if ds is None or ds.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Dataset '{ds_id}' not found")
    has_header = q_bool(ctx.query, "header", False)
    if not ctx.request.content_type.startswith("multipart/"):
        raise ApiFailure(400, "Expected a multipart/form-data body with a 'file' part")
    try:
        reader = await ctx.request.multipart()
        content: bytes | None = None
        file_name = "dataset.csv"
        media_type = "text/csv"
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, BodyPartReader) and part.name == "file":
                content = bytes(await part.read())
                file_name = part.filename or file_name
                media_type = part.headers.get("Content-Type", media_type)
            elif part is not None:
                await part.release()
    except (ValueError, AssertionError) as exc:
        raise ApiFailure(400, f"Malformed multipart body: {exc}") from None
    if content is None:
        raise ApiFailure(400, "Missing multipart part 'file'")
    if file_name.endswith(".tsv"):
        media_type = "text/tab-separated-values"
    elif media_type in ("application/octet-stream", ""):
        media_type = "text/csv"
    version = ctx.state.upload_dataset(ds, file_name, media_type, content, has_header)
    return {"version": version}


async def h_list_data_links(app: FakeApp, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListDataLinks", default_max=100)
    found = matching(ctx, ctx.state.data_links.values())
    return {
        "dataLinks": [data_link_dto(dl) for dl in found[offset : offset + max_]],
        "totalSize": len(found),
    }


async def h_explore(app: FakeApp, ctx: Ctx) -> Result:
    dl_id = ctx.request.match_info["dataLinkId"]
    path = ctx.request.match_info.get("path", "")
    dl = ctx.state.data_links.get(dl_id)
    if dl is None or dl.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Data-link '{dl_id}' not found")
    size = q_int(ctx.query, "pageSize", 100)
    assert size is not None
    if not 1 <= size <= 1000:
        raise ApiFailure(400, "'pageSize' must be within 1..1000")
    token = ctx.query.get("nextPageToken")
    start = decode_page_token(token) if token else 0
    items = dl.listing(path)
    if path and not items:
        raise ApiFailure(404, f"Path '{path}' not found in data-link '{dl_id}'")
    search = ctx.query.get("search")
    if search:
        items = [it for it in items if it["name"].startswith(search)]
    page = items[start : start + size]
    nxt = encode_page_token(start + size) if start + size < len(items) else None
    return {"objects": page, "nextPageToken": nxt, "originalPath": path or None}


async def h_not_found(app: FakeApp, ctx: Ctx) -> Result:
    raise ApiFailure(404, f"Not found: {ctx.request.method} {ctx.request.path}")


def build_routes() -> list[Route]:
    return [
        Route("GET", "/service-info", "Info", h_service_info, auth=False),
        Route("GET", "/openapi/seqera-api-latest.yml", "OpenApiDocument", h_openapi, auth=False),
        Route("GET", "/user-info", "UserInfo", h_user_info),
        Route("GET", "/user/{userId}/workspaces", "ListWorkspacesUser", h_user_workspaces),
        Route("GET", "/orgs", "ListOrganizations", h_orgs),
        Route("GET", "/orgs/{orgId}/workspaces", "ListWorkspaces", h_org_workspaces),
        Route("GET", "/compute-envs", "ListComputeEnvs", h_list_compute_envs),
        Route("GET", "/compute-envs/{computeEnvId}", "DescribeComputeEnv", h_describe_compute_env),
        Route("GET", "/pipelines", "ListPipelines", h_list_pipelines),
        Route("GET", "/pipelines/{pipelineId}/launch", "DescribePipelineLaunch", h_pipeline_launch),
        Route("POST", "/workflow/launch", "CreateWorkflowLaunch", h_launch),
        Route("GET", "/workflow", "ListWorkflows", h_list_workflows),
        Route("GET", "/workflow/{workflowId}", "DescribeWorkflow", h_describe_workflow),
        Route("DELETE", "/workflow/{workflowId}", "DeleteWorkflow", h_delete_workflow),
        Route("POST", "/workflow/{workflowId}/cancel", "CancelWorkflow", h_cancel_workflow),
        Route("GET", "/workflow/{workflowId}/launch", "DescribeWorkflowLaunch", h_workflow_launch),
        Route("GET", "/workflow/{workflowId}/progress", "DescribeWorkflowProgress", h_progress),
        Route("GET", "/workflow/{workflowId}/tasks", "ListWorkflowTasks", h_tasks),
        Route(
            "GET",
            "/workflow/{workflowId}/download",
            "DownloadWorkflowLog",
            h_download_log,
            streams=True,
        ),
        Route("GET", "/workflow/{workflowId}/log", "GetWorkflowLog", h_workflow_log),
        Route("GET", "/labels", "ListLabels", h_list_labels),
        Route("POST", "/labels", "CreateLabel", h_create_label),
        Route("GET", "/datasets", "ListDatasetsV2", h_list_datasets),
        Route("POST", "/datasets", "CreateDatasetV2", h_create_dataset),
        Route(
            "GET",
            "/workspaces/{workspaceId}/datasets",
            "ListDatasets",
            h_list_datasets_ws,
            workspace_in_path=True,
        ),
        Route(
            "POST",
            "/workspaces/{workspaceId}/datasets",
            "CreateDataset",
            h_create_dataset,
            workspace_in_path=True,
        ),
        Route(
            "POST",
            "/workspaces/{workspaceId}/datasets/{datasetId}/upload",
            "UploadDataset",
            h_upload_dataset,
            workspace_in_path=True,
        ),
        Route("GET", "/data-links", "ListDataLinks", h_list_data_links),
        Route("GET", "/data-links/{dataLinkId}/browse", "ExploreDataLink", h_explore),
        Route(
            "GET",
            "/data-links/{dataLinkId}/browse/{path:.+}",
            "ExploreDataLinkWithPath",
            h_explore,
        ),
    ]


class FakeApp:
    """Glue between aiohttp and a :class:`FakeState`: one instance per server."""

    def __init__(
        self,
        state: FakeState,
        faults: FaultInjector,
        *,
        rate_clock: Clock | None = None,
        api_version: str = DEFAULT_API_VERSION,
        spec_bytes: bytes = b"",
        platform_version: str = "25.2.0-fake",
        emit_nulls: bool = False,
    ) -> None:
        self.state = state
        self.faults = faults
        self.rate_clock: Clock = rate_clock if rate_clock is not None else MonotonicClock()
        self.api_version = api_version
        self.platform_version = platform_version
        self.spec_bytes = spec_bytes
        #: keep null members in JSON payloads (default: omitted, as the Platform does)
        self.emit_nulls = emit_nulls
        #: unhandled exceptions turned into 500s (should stay empty: each one is a bug)
        self.errors: list[BaseException] = []
        #: operationIds of requests whose client went away before the answer (not bugs)
        self.disconnects: list[str] = []
        self.routes = build_routes()

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for route in self.routes:
            app.router.add_route(route.method, route.path, self._wrap(route))
        catch_all = Route("*", "/{tail:.*}", "NotFound", h_not_found, auth=False)
        app.router.add_route("*", "/{tail:.*}", self._wrap(catch_all))
        return app

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await self._dispatch(route, request)
            except web.HTTPException:
                raise
            except asyncio.CancelledError:
                # never swallowed: server shutdown (or handler_cancellation, if turned on)
                raise
            except ConnectionError as exc:
                # aiohttp does not cancel a handler whose client went away (its default
                # since 3.9, handler_cancellation=False): the next read of the body or
                # write of the answer raises instead. Expected, so quiet; the same error
                # while the client is still there is a bug of the fake.
                if _client_gone(request):
                    self._client_went_away(route, request)
                    return web.Response(status=499)
                return self._bug(route, exc)
            except Exception as exc:
                return self._bug(route, exc)

        return handler

    def _bug(self, route: Route, exc: Exception) -> web.Response:
        log.exception("fake Platform: unhandled error in %s", route.operation_id)
        self.errors.append(exc)
        return _error(500, f"Internal fake server error: {type(exc).__name__}")

    def _client_went_away(self, route: Route, request: web.Request) -> None:
        log.debug(
            "fake Platform: client went away during %s %s (%s)",
            request.method,
            request.path,
            route.operation_id,
        )
        self.disconnects.append(route.operation_id)

    def _authenticate(self, request: web.Request) -> TokenInfo | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        return self.state.tokens.get(value.strip())

    async def _dispatch(self, route: Route, request: web.Request) -> web.StreamResponse:
        token: TokenInfo | None = None
        if route.auth:
            token = self._authenticate(request)
            if token is None:
                return web.Response(status=403)
            wait = token.window.hit(self.rate_clock.now())
            if wait is not None:
                secs = SlidingWindow.retry_after_seconds(wait)
                resp = _error(
                    429,
                    f"Maximum request rate exceeded. Wait {secs}secs before issuing a new request",
                )
                resp.headers["Retry-After"] = str(secs)
                return resp

        fired: dict[str, FaultSpec] = {}
        if self.faults.rules and route.operation_id not in _NO_FAULTS:
            fired = {f.kind: f for f in self.faults.pick(route.operation_id, request.path)}
            latency = fired.get("latency")
            if latency is not None and (latency.when == "before" or route.streams):
                await asyncio.sleep(latency.delay)
            if "drop_before" in fired:
                return _abort(request)
            if "status" in fired:
                status = fired["status"].status
                return _error(status, f"Fake fault: HTTP {status}")

        try:
            ws_raw = (
                request.match_info.get("workspaceId")
                if route.workspace_in_path
                else request.query.get("workspaceId")
            )
            workspace_id: int | None = None
            if ws_raw not in (None, ""):
                assert ws_raw is not None
                try:
                    workspace_id = int(ws_raw)
                except ValueError:
                    raise ApiFailure(400, f"Invalid 'workspaceId' parameter: {ws_raw!r}") from None
                if token is not None and not token.allows(workspace_id):
                    raise ApiFailure(403, f"Access to workspace {workspace_id} is not allowed")
                self.state.check_workspace(workspace_id)
            ctx = Ctx(request, self.state, token, workspace_id, request.query)
            result = await route.fn(self, ctx)
        except ApiFailure as failure:
            result = _error(failure.status, failure.message)

        latency = fired.get("latency")
        if latency is not None and latency.when == "after" and not route.streams:
            # processed (state changed); the answer is late: the client may give up first
            await asyncio.sleep(latency.delay)
            if _client_gone(request):
                self._client_went_away(route, request)
                return web.Response(status=499)
        if "drop_after" in fired:
            return _abort(request)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        if not self.emit_nulls:
            result = strip_nulls(result)
        if "drift" in fired:
            result = apply_drift(result, fired["drift"])
        body = orjson.dumps(result)
        if "truncate" in fired:
            partial = web.StreamResponse(status=200, headers={"Content-Type": JSON})
            partial.content_length = len(body)
            await partial.prepare(request)
            await partial.write(body[: len(body) // 2])
            return _abort(request)
        if "invalid_json" in fired:
            return web.Response(body=body[: max(1, len(body) // 2)], content_type=JSON)
        if "slow_body" in fired:
            spec = fired["slow_body"]
            slow = web.StreamResponse(status=200, headers={"Content-Type": JSON})
            slow.content_length = len(body)
            await slow.prepare(request)
            for i in range(0, len(body), spec.chunk):
                await slow.write(body[i : i + spec.chunk])
                if i + spec.chunk < len(body):
                    await asyncio.sleep(spec.delay)
            await slow.write_eof()
            return slow
        return web.Response(body=body, content_type=JSON)


def read_spec_version(path: Path) -> str:
    """``info.version`` of an OpenAPI YAML file, without parsing the whole document."""
    in_info = False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("info:"):
                in_info = True
                continue
            if in_info:
                if line and not line[0].isspace():
                    break
                m = re.match(r"^\s+version:\s*['\"]?([^'\"\s]+)", line)
                if m:
                    return m.group(1)
    return "unknown"
