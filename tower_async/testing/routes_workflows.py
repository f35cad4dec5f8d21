"""Handlers of runs: launch, list, describe, cancel, delete, progress and tasks."""

from __future__ import annotations

from typing import Any

from .records import ApiFailure, Workflow
from .render_runs import describe_workflow, workspace_extras
from .routing import AppInfo, Ctx, Result, json_body, paging, q_bool, q_list, workspace_of

__all__ = [
    "get_workflow",
    "h_cancel_workflow",
    "h_delete_workflow",
    "h_describe_workflow",
    "h_launch",
    "h_list_workflows",
    "h_progress",
    "h_tasks",
    "h_workflow_launch",
]


def get_workflow(ctx: Ctx) -> Workflow:
    """The run of the request's ``{workflowId}`` in its workspace (404 otherwise)."""
    return ctx.state.get_workflow(ctx.request.match_info["workflowId"], ctx.workspace_id)


async def h_launch(app: AppInfo, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    launch = body.get("launch")
    if not isinstance(launch, dict):
        raise ApiFailure(400, "Malformed request body: missing 'launch' object")
    token = ctx.token.token if ctx.token else ""
    wf = ctx.state.launch(ctx.workspace_id, launch, token)
    return {"workflowId": wf.id}


async def h_workflow_launch(app: AppInfo, ctx: Ctx) -> Result:
    return {"launch": ctx.state.workflow_launch(get_workflow(ctx))}


def _list_entry(ctx: Ctx, wf: Workflow, attributes: set[str]) -> dict[str, Any]:
    state = ctx.state
    extras = workspace_extras(wf, workspace_of(ctx, wf.workspace_id))
    item: dict[str, Any] = {"workflow": state.workflow_dto(wf), **extras}
    if "minimal" not in attributes:
        item["progress"] = state.progress(wf)
        item["starred"] = False
    if "labels" in attributes:
        item["labels"] = state.workflow_labels(wf)
    if "optimized" in attributes:
        item["optimized"] = False
    return item


async def h_list_workflows(app: AppInfo, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListWorkflows")
    attributes = q_list(ctx.query, "attributes")
    include_total = q_bool(ctx.query, "includeTotalSize", False)
    found = ctx.state.list_workflows(ctx.workspace_id, ctx.query.get("search"))
    page = found[offset : offset + max_]
    return {
        "workflows": [_list_entry(ctx, wf, attributes) for wf in page],
        "totalSize": len(found) if include_total else 0,
        "hasMore": offset + len(page) < len(found),
    }


async def h_describe_workflow(app: AppInfo, ctx: Ctx) -> Result:
    state = ctx.state
    wf = get_workflow(ctx)
    return describe_workflow(
        wf,
        state.clock.now(),
        state.user,
        ce=state.compute_envs.get(wf.compute_env_id),
        ws=workspace_of(ctx, wf.workspace_id),
        labels=state.workflow_labels(wf),
    )


async def h_delete_workflow(app: AppInfo, ctx: Ctx) -> Result:
    ctx.state.delete(get_workflow(ctx))
    return None


async def h_cancel_workflow(app: AppInfo, ctx: Ctx) -> Result:
    ctx.state.cancel(get_workflow(ctx))
    return None


async def h_progress(app: AppInfo, ctx: Ctx) -> Result:
    return {"progress": ctx.state.progress(get_workflow(ctx))}


async def h_tasks(app: AppInfo, ctx: Ctx) -> Result:
    wf = get_workflow(ctx)
    max_, offset = paging(ctx, "ListWorkflowTasks", default_max=10)
    tasks = ctx.state.tasks(wf)
    search = (ctx.query.get("search") or "").lower()
    if search:
        tasks = [t for t in tasks if search in t["name"].lower()]
    return {"tasks": [{"task": t} for t in tasks[offset : offset + max_]], "total": len(tasks)}
