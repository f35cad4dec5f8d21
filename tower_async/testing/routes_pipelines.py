"""Handlers of compute environments and pipelines."""

from __future__ import annotations

from .records import ApiFailure
from .render import compute_env_dto, compute_env_entry, pipeline_dto, pipeline_launch_dto
from .routing import AppInfo, Ctx, Result, matching, paging, workspace_of

__all__ = [
    "h_describe_compute_env",
    "h_list_compute_envs",
    "h_list_pipelines",
    "h_pipeline_launch",
]


async def h_list_compute_envs(app: AppInfo, ctx: Ctx) -> Result:
    status = ctx.query.get("status")
    ws = workspace_of(ctx, ctx.workspace_id)
    name = ws.name if ws else None
    envs = [
        compute_env_entry(ce, name)
        for ce in ctx.state.compute_envs.values()
        if ce.workspace_id == ctx.workspace_id and (not status or ce.status == status.upper())
    ]
    return {"computeEnvs": envs}


async def h_describe_compute_env(app: AppInfo, ctx: Ctx) -> Result:
    ce_id = ctx.request.match_info["computeEnvId"]
    ce = ctx.state.compute_envs.get(ce_id)
    if ce is None or ce.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Compute environment '{ce_id}' not found")
    return {"computeEnv": compute_env_dto(ce)}


async def h_list_pipelines(app: AppInfo, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListPipelines")
    found = sorted(
        matching(ctx, ctx.state.pipelines.values()), key=lambda p: (p.name.lower(), p.id)
    )
    page = found[offset : offset + max_]
    now = ctx.state.clock.now()
    return {
        "pipelines": [
            pipeline_dto(p, workspace_of(ctx, p.workspace_id), ctx.state.user, now) for p in page
        ],
        "totalSize": len(found),
    }


async def h_pipeline_launch(app: AppInfo, ctx: Ctx) -> Result:
    raw = ctx.request.match_info["pipelineId"]
    if not raw.isdigit():
        raise ApiFailure(400, f"Invalid pipelineId '{raw}'")
    p = ctx.state.pipelines.get(int(raw))
    if p is None or p.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Pipeline '{raw}' not found")
    ce = ctx.state.compute_envs[p.compute_env_id]
    return {"launch": pipeline_launch_dto(p, ce, ctx.state.clock.now())}
